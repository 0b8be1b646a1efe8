# The canary controller image: Debian's python3 and a virtualenv holding the canary wheel and its
# dependencies. Builds the same with `docker build .`, `buildah bud` (`make image`) or CI.
# The final stage has no compiler, no pip cache and no package lists; it runs as a non-root
# user and writes nothing to its root filesystem (readOnlyRootFilesystem in the chart).

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY canary ./canary
# The wheel is built from the sources, then installed with its dependencies (binary wheels only).
# Behind a TLS-inspecting proxy, pass its CA bundle as the build secret `ca-bundle` (make image
# does); it is mounted for this step only and never stored in a layer.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3 -m venv /opt/canary \
 && /opt/canary/bin/pip install --no-cache-dir --disable-pip-version-check --upgrade pip \
 && /opt/canary/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && /opt/canary/bin/pip install --no-cache-dir --only-binary=:all: /wheels/canary-*.whl \
 && /opt/canary/bin/pip uninstall --yes pip \
 && find /opt/canary -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/canary/bin/canary version

FROM debian:bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/canary-dev/canary
LABEL org.opencontainers.image.title="canary" \
      org.opencontainers.image.description="Progressive-delivery controller for Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
COPY --from=build /opt/canary /opt/canary
# No .pyc written at run time (the root filesystem is read-only), logs unbuffered.
ENV PATH=/opt/canary/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["canary"]
CMD ["run"]
