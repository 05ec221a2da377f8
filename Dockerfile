# pbxware-exporter container image: docs/deploy.md (building offline, running, Kubernetes).
#
#   pip download --require-hashes -r requirements.lock -d wheelhouse     # optional: for
#   pip download -d wheelhouse "setuptools>=68" wheel                      #   `docker build --network none`
#   docker build -t pbxware-exporter .
#   docker run -v ./config.yml:/etc/pbxware-exporter/config.yml:ro -p 9865:9865 pbxware-exporter
#
# Reproducible: the dependencies come from requirements.lock (exact versions and their sha256,
# written by scripts/lock) and pip refuses anything else. BASE names the Debian release
# (bookworm), not just "3.11-slim"; for byte-identical rebuilds pin it by digest:
#   --build-arg BASE=python:3.11-slim-bookworm@sha256:<digest>   (docs/deploy.md)
# BASE must be a Debian-style image with Python 3.11 as python3 (`python3 -m venv` working);
# scripts/docker-base makes a local stand-in under this name where no registry can be reached.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Wheels (and sdists) downloaded on the host: when wheelhouse/ holds any, pip installs from
# them only (--no-index) and the build needs no network; without them pip asks PyPI. Either
# way every file must match a hash of requirements.lock. `wheelhous[e]` is a pattern so that
# a missing wheelhouse/ is no error; pyproject.toml is there to give COPY at least one source.
COPY pyproject.toml wheelhous[e] /wheelhouse/
COPY requirements.lock pyproject.toml setup.py README.md /src/
COPY src/ /src/src/
# A venv holding the exporter and its dependencies and nothing else: the locked dependencies
# with --require-hashes, then the exporter itself with --no-deps (nothing resolved beyond the
# lock); pip and setuptools leave once the install is done, so the final stage copies no
# installer and no cache.
RUN python3 -m venv /opt/pbxware-exporter \
    && if ls /wheelhouse/*.whl >/dev/null 2>&1; then set -- --no-index --find-links=/wheelhouse; fi \
    && /opt/pbxware-exporter/bin/pip install --no-cache-dir --require-hashes "$@" -r /src/requirements.lock \
    && /opt/pbxware-exporter/bin/pip install --no-cache-dir --no-deps "$@" /src \
    && /opt/pbxware-exporter/bin/pip uninstall --yes pip setuptools \
    && /opt/pbxware-exporter/bin/pbxware-exporter --version

FROM ${BASE}
LABEL org.opencontainers.image.title="pbxware-exporter" \
      org.opencontainers.image.description="Prometheus exporter and monitoring daemon for Bicom PBXware" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/pbxware-exporter /opt/pbxware-exporter
ENV PATH=/opt/pbxware-exporter/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# No user of that id is needed in /etc/passwd; a numeric id lets Kubernetes check runAsNonRoot.
# Nothing in the image is writable by it: the root filesystem may be mounted read-only.
USER 65532:65532
EXPOSE 9865
# /-/healthy answers 200 while the process runs and stays open under basic auth. Another port
# or TLS: set PBXWARE_HEALTHCHECK_URL (an https URL's certificate is not verified: it is the
# container's own port). A client-certificate-only listener needs --no-healthcheck instead.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/pbxware-exporter/bin/python", "-c", "import os, ssl, urllib.request as u; u.urlopen(os.environ.get('PBXWARE_HEALTHCHECK_URL', 'http://127.0.0.1:9865/-/healthy'), timeout=4, context=ssl._create_unverified_context())"]
# The config is mounted here read-only (a ConfigMap, or -v ./config.yml:…:ro); arguments
# after the image name are added, e.g. --shard.index=1 --shard.count=2.
ENTRYPOINT ["/opt/pbxware-exporter/bin/pbxware-exporter", "--config.file=/etc/pbxware-exporter/config.yml"]
