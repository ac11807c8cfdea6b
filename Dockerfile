# syntax=docker/dockerfile:1
# One image for every kubepulse role; the Helm chart picks the role by its command:
#   kubepulse-exporter   the DaemonSet agent       (docs/exporter.md)
#   kubepulse-adapter    the metrics API server    (docs/adapter.md)
#   kubectl-pulse        the CLI, for one-off jobs
#
#   docker build -t kubepulse:0.1.0 .
#
# Reproducible: the runtime dependencies come from requirements.lock and the build backend
# from requirements-build.lock, pinned with hashes (scripts/lock_dependencies.py), and
# kubepulse itself is built from this checkout.
# tests/unit/test_dockerfile.py checks this file against the project's entry points.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtual environment with the locked dependencies and kubepulse ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# kubepulse's own wheel, built with the locked build backend and no network after that.
RUN python -m venv /opt/build
COPY requirements-build.lock /tmp/requirements-build.lock
RUN /opt/build/bin/pip install --require-hashes -r /tmp/requirements-build.lock
COPY pyproject.toml README.md /src/
COPY kubepulse /src/kubepulse
COPY exporter /src/exporter
COPY adapter /src/adapter
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels /src
# The runtime environment: the locked dependencies, then the wheel without resolving again.
RUN python -m venv /opt/kubepulse
COPY requirements.lock /tmp/requirements.lock
RUN /opt/kubepulse/bin/pip install --require-hashes --only-binary=:all: \
        -r /tmp/requirements.lock \
 && /opt/kubepulse/bin/pip install --no-deps --no-index /wheels/kubepulse-*.whl
# Byte-compile once here, so the read-only root filesystem never needs to.
RUN /opt/kubepulse/bin/python -m compileall -q /opt/kubepulse

# ---- runtime: the interpreter, the environment, nothing else ----------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="kubepulse" \
      org.opencontainers.image.description="Kubernetes custom-metrics adapter and node exporter" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/kubepulse /opt/kubepulse
ENV PATH=/opt/kubepulse/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532 is the conventional "nonroot" user of distroless images; no shell login, no home.
USER 65532:65532
WORKDIR /tmp
# Exporter 9847 (plain HTTP /metrics), adapter 6443 (HTTPS).
EXPOSE 9847 6443
ENTRYPOINT ["kubepulse-adapter"]
