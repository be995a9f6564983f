# syntax=docker/dockerfile:1
# Build: docker build -t claimgate .
# Run:   docker run -e CLAIMGATE_DATABASE_URL=postgresql+asyncpg://... \
#                   -e CLAIMGATE_REDIS_URL=redis://... -e CLAIMGATE_PII_SECRET=... \
#                   -e CLAIMGATE_ENVIRONMENT=production -p 8000:8000 claimgate
# Without the two URLs the image starts its embedded PostgreSQL and Redis under /data.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-deps .

FROM python:3.11-slim AS runtime
RUN useradd --create-home --uid 10001 claimgate && mkdir /data && chown claimgate /data
COPY --from=build /opt/venv /opt/venv
# alembic.ini and migrations/ are read from the installed package's parent directory.
COPY --from=build /src/alembic.ini /opt/venv/lib/python3.11/site-packages/alembic.ini
COPY --from=build /src/migrations /opt/venv/lib/python3.11/site-packages/migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CLAIMGATE_HOST=0.0.0.0 \
    CLAIMGATE_PORT=8000 \
    CLAIMGATE_DATA_DIR=/data
USER claimgate
WORKDIR /home/claimgate
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["claimgate"]
CMD ["serve"]
