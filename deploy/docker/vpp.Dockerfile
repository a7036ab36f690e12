# syntax=docker/dockerfile:1
# FD.io VPP for the UPF pods, from FD.io's release packages (packagecloud.io/fdio/release).
#
#   docker build -f deploy/docker/vpp.Dockerfile -t edgecups/vpp:26.06 deploy/docker
#
# The version is pinned (VPP_VERSION): the agent checks at start that every API message it uses
# has the CRC it expects, so VPP and the agent are upgraded together. The first stage fetches the
# packages with the repository's signing key; the second installs only them, without curl or gnupg.
ARG UBUNTU_IMAGE=ubuntu:noble-20250925
ARG VPP_VERSION=26.06-release

FROM ${UBUNTU_IMAGE} AS fetch
ARG VPP_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://packagecloud.io/fdio/release/gpgkey | gpg --dearmor -o /usr/share/keyrings/fdio.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/fdio.gpg] https://packagecloud.io/fdio/release/ubuntu noble main" \
      > /etc/apt/sources.list.d/fdio.list \
 && apt-get update \
 && mkdir /debs && cd /debs \
 && apt-get download vpp=${VPP_VERSION} vpp-plugin-core=${VPP_VERSION} libvppinfra=${VPP_VERSION}

FROM ${UBUNTU_IMAGE}
COPY --from=fetch /debs /tmp/debs
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/debs/*.deb \
 && rm -rf /tmp/debs /var/lib/apt/lists/*
# VPP needs root in its container (hugepages, af_packet): the pod gives it IPC_LOCK, NET_ADMIN,
# NET_RAW and SYS_NICE only. Its API socket and schemas (/usr/share/vpp/api) serve the agent.
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["vppctl", "-s", "/run/vpp/cli.sock", "show", "version"]
ENTRYPOINT ["/usr/bin/vpp", "-c", "/etc/vpp/startup.conf"]
