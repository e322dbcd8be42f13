# syntax=docker/dockerfile:1.7
# One image for the five Jiandu services. Pick the service with SERVICE=gateway|hotline|
# casereview|penalty|notify (default command: python -m services.$SERVICE); any other
# command runs as given, e.g. `python -m shared.cli topics` for the topic-init job. The
# developer package (devtools/: runner, embedded servers, bench, demo) and the `dev` extra
# (noida-db, SecantusDB) are not installed.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/jiandu
WORKDIR /src
# Dependencies first (cached until pyproject.toml changes): install the project with empty
# packages, then reinstall it alone with the real sources.
COPY pyproject.toml ./
RUN mkdir -p shared services \
 && touch shared/__init__.py services/__init__.py \
 && /opt/jiandu/bin/pip install . \
 && /opt/jiandu/bin/pip uninstall --yes jiandu
COPY shared ./shared
COPY services ./services
RUN /opt/jiandu/bin/pip install --no-deps . \
 && /opt/jiandu/bin/python -c "import services.gateway.main, shared.cli"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="jiandu" \
      org.opencontainers.image.description="Jiandu (监督): supervision of administrative law enforcement"
ENV PATH=/opt/jiandu/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SERVICE=gateway \
    JIANDU_HTTP_HOST=0.0.0.0 \
    JIANDU_LOG_JSON=true
RUN groupadd --system --gid 10001 jiandu \
 && useradd --system --uid 10001 --gid jiandu --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin jiandu
COPY --from=build /opt/jiandu /opt/jiandu
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/jiandu-entrypoint
COPY --chmod=0644 deploy/docker/healthcheck.py /usr/local/lib/jiandu/healthcheck.py
WORKDIR /tmp
USER 10001:10001
# gateway, hotline, casereview, penalty, notify (JIANDU_HTTP_PORT overrides)
EXPOSE 8000 8001 8002 8003 8004
HEALTHCHECK --interval=15s --timeout=5s --start-period=40s --retries=3 \
  CMD ["/opt/jiandu/bin/python", "/usr/local/lib/jiandu/healthcheck.py", "healthz"]
ENTRYPOINT ["/usr/local/bin/jiandu-entrypoint"]
CMD []
