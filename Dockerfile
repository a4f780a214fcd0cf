# vpsbot for operators: `vpsbot serve` under gunicorn, configured from the
# environment (see README.md, "Serving"). Build with `docker build -t vpsbot .`
FROM python:3.11-slim

# `pip install .` installs vpsbot with its migrations (vpsbot/migrations).
# Alone, the image keeps a SQLite file in the /data volume with one worker;
# compose.yaml sets a PostgreSQL DATABASE_URL and two workers.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000 \
    VPSBOT_WEB_WORKERS=1 \
    VPSBOT_LOG_FORMAT=json \
    DATABASE_URL=sqlite:////data/vpsbot.db

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY vpsbot ./vpsbot
RUN pip install . && rm -rf /app/vpsbot /app/build \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin vpsbot \
    && mkdir /data && chown vpsbot /data

USER vpsbot
VOLUME ["/data"]
EXPOSE 3000

# /healthz answers while the process serves; orchestrators that tell liveness
# from readiness should probe /readyz for the latter.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

# PORT and VPSBOT_WEB_WORKERS are read by `vpsbot serve` itself. SIGTERM
# stops it gracefully: requests in flight and acknowledged work finish first.
STOPSIGNAL SIGTERM
ENTRYPOINT ["vpsbot", "serve"]
