# One image for every FIML service; the command picks the service:
#   fiml topics create | fiml ingest | fiml arbitrate | fiml gateway
# Build: docker build -t fiml-streaming:0.1.0 .   Settings are FIML_* variables (README.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# The dashboard's chart library from npm (the Makefile's dashboard-assets pins the same one).
FROM ${NODE_IMAGE} AS dashboard
RUN npm install --no-save --no-audit --no-fund --prefix /opt/dashboard lightweight-charts@5.2.1

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/fiml
COPY pyproject.toml README.md ./
COPY fiml ./fiml
COPY runtime ./runtime
COPY schemas ./schemas
COPY domain ./domain
COPY ingest ./ingest
COPY arbitration ./arbitration
COPY gateway ./gateway
RUN /opt/fiml/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/fiml/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FIML_DASHBOARD_CHART_LIBRARY=/opt/dashboard/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs
RUN groupadd --system --gid 10001 fiml \
    && useradd --system --uid 10001 --gid fiml --home-dir /var/lib/fiml --create-home \
        --shell /usr/sbin/nologin fiml
COPY --from=build /opt/fiml /opt/fiml
COPY --from=dashboard /opt/dashboard /opt/dashboard
# The fiml user's home: the Faust worker keeps its data under ~/.cache/fiml/faust.
WORKDIR /var/lib/fiml
USER 10001:10001
EXPOSE 8000 8081
ENTRYPOINT ["fiml"]
CMD ["gateway"]
