# mailtriage serve: the HTTP API, live ingest (follow, syslog, push) and /metrics.
#
#   docker build -t mailtriage .
#   docker run -p 8025:8025 -v mailtriage-data:/var/lib/mailtriage \
#       -v /var/log/mail:/var/log/mail:ro -v ./mailtriage.toml:/etc/mailtriage/mailtriage.toml:ro \
#       mailtriage --config /etc/mailtriage/mailtriage.toml --follow /var/log/mail/mail.log
#
# The service listens on 0.0.0.0 in the container, which it only does when the
# config declares [[tokens]]; deploy/docker-compose.yml shows a complete set-up.

# The build stage is the full image: it has the C compiler for the parser modules,
# which the wheel build compiles with mypyc (setup.py). Build with
# --build-arg MAILTRIAGE_COMPILE=0 for pure-Python parsers (slower, same output).
# The venv moves to the slim image below, which has the same Python.
FROM python:3.11-bookworm AS build
ARG MAILTRIAGE_COMPILE=1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/mailtriage
COPY pyproject.toml setup.py ./
COPY mailtriage/ mailtriage/
RUN /opt/mailtriage/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="mailtriage" \
      org.opencontainers.image.description="Postfix and Dovecot logs to delivery events, metrics and answers"
RUN groupadd --system --gid 10001 mailtriage \
    && useradd --system --uid 10001 --gid mailtriage \
        --home-dir /var/lib/mailtriage --shell /usr/sbin/nologin mailtriage \
    && mkdir -p /var/lib/mailtriage /etc/mailtriage \
    && chown mailtriage:mailtriage /var/lib/mailtriage
COPY --from=build /opt/mailtriage /opt/mailtriage
ENV PATH=/opt/mailtriage/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MAILTRIAGE_STORE__DB=/var/lib/mailtriage/mailtriage.duckdb \
    MAILTRIAGE_SERVER__HOST=0.0.0.0 \
    MAILTRIAGE_SERVER__PORT=8025 \
    MAILTRIAGE_SERVER__JSON_LOGS=true
# The DuckDB file and its write-ahead log live here; keep it on a volume.
VOLUME ["/var/lib/mailtriage"]
WORKDIR /var/lib/mailtriage
USER 10001:10001
EXPOSE 8025
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('MAILTRIAGE_SERVER__PORT', '8025'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["mailtriage", "serve"]
