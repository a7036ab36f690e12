# syntax=docker/dockerfile:1
# The control plane: `edgecups cp --config /etc/edgecups/cp.yaml`, as the tests run it.
#
#   docker build -f deploy/docker/cp.Dockerfile -t edgecups/cp:0.1.0 .      (from the repository root)
#
# Two stages: the first installs the project and its dependencies (all binary wheels) into a
# virtualenv; the second is the same pinned Python image with only that virtualenv, run as an
# unprivileged user. The codec runs in pure Python (the reference behaviour): see README.md.
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
# gRPC API, PFCP (N4), /metrics.
EXPOSE 50051/tcp 8805/udp 9090/tcp
# grpc.health.v1 over the API's TLS: set EDGECUPS_PROBE_CA (and EDGECUPS_PROBE_SERVER_NAME) for a TLS API.
HEALTHCHECK --interval=20s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-m", "control_plane.cli.deploy_commands", "probe", "cp", "--config", "/etc/edgecups/cp.yaml"]
ENTRYPOINT ["edgecups", "cp"]
CMD ["--config", "/etc/edgecups/cp.yaml"]
