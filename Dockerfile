# syntax=docker/dockerfile:1
# The service as users run it: the built wheel installed into a slim image, run as a
# non-root user, healthy when /readyz answers. Build: docker build -t neolith-orchestrator .

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE alembic.ini ./
COPY neolith_orchestrator ./neolith_orchestrator
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_URL=sqlite+aiosqlite:////var/lib/neolith/neolith-orchestrator.db
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && useradd --system --uid 10001 --home-dir /var/lib/neolith --create-home neolith
USER neolith
WORKDIR /var/lib/neolith
VOLUME ["/var/lib/neolith"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8080'), timeout=3)"]
ENTRYPOINT ["neolith-orchestrator"]
CMD ["serve"]
