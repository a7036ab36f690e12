# syntax=docker/dockerfile:1
# The UPF agent: `edgecups upf --config /etc/edgecups/upf.yaml`, as the tests run it.
#
#   docker build -f deploy/docker/upf.Dockerfile -t edgecups/upf:0.1.0 .    (from the repository root)
#
# With `driver: vpp` the agent needs no privilege: it talks to VPP over VPP's API socket (group
# 10001, startup.conf `unix { gid 10001 }`), so it runs as the unprivileged user 10001. With
# `driver: software` it creates TUN devices and routes: run it as root with NET_ADMIN
# (docker run --user 0 --cap-add NET_ADMIN ...).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pfcp pfcp
COPY control_plane control_plane
COPY user_plane user_plane
COPY edge_sites edge_sites
COPY db db
RUN python -m venv /opt/edgecups && /opt/edgecups/bin/pip install .

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 edgecups && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin edgecups
COPY --from=build /opt/edgecups /opt/edgecups
ENV PATH=/opt/edgecups/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
# PFCP (N4), /metrics.
EXPOSE 8805/udp 9090/tcp
# A PFCP Heartbeat Request to the agent's own N4 address (TS 29.244 §6.2.2).
HEALTHCHECK --interval=20s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-m", "control_plane.cli.deploy_commands", "probe", "upf", "--config", "/etc/edgecups/upf.yaml"]
ENTRYPOINT ["edgecups", "upf"]
CMD ["--config", "/etc/edgecups/upf.yaml"]
