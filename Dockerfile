# syntax=docker/dockerfile:1
# One image for every Medic process; the process is the command:
#   docker run IMAGE serve gateway | serve auth | serve heartbeat | serve routing |
#                    serve delivery | serve monitor | migrate | bootstrap-admin | config
# Build context: the repository root (docker build -t medic .).

# --- builder: wheels of Medic and of every dependency ----------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The package definition first, so the dependency layer is reused while only code changes.
COPY pyproject.toml setup.py ./
COPY medic ./medic
COPY services ./services
COPY gateway ./gateway
COPY medic_cli ./medic_cli
COPY migrations ./migrations
RUN pip wheel --wheel-dir /wheels .

# --- runtime: slim Python, the wheels installed, no build tools, not root ----------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # In a container the servers listen on every interface; the ports are the defaults of
    # medic/config.py (gateway 8080, gRPC 50051-50055, metrics 9151-9155).
    MEDIC_HOST=0.0.0.0 \
    MEDIC_DATA_DIR=/var/lib/medic

RUN groupadd --system --gid 10001 medic \
    && useradd --system --uid 10001 --gid medic --home-dir /var/lib/medic --no-create-home \
       --shell /usr/sbin/nologin medic \
    && mkdir -p /var/lib/medic \
    && chown medic:medic /var/lib/medic \
    && chmod 0700 /var/lib/medic

# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels medic

USER 10001:10001
WORKDIR /var/lib/medic

EXPOSE 8080 50051 50052 50053 50054 50055 50056 9151 9152 9153 9154 9155 9156

# One check for every process: `medic healthcheck` finds the process PID 1 serves and asks
# it (gRPC health Check for the services and the monitor, GET /health/live for the gateway);
# one-shot commands (migrate) pass.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["medic", "healthcheck"]

ENTRYPOINT ["medic"]
CMD ["serve", "gateway"]
