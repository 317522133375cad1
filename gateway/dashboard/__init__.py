"""The browser dashboard at ``/``: plain ES modules and CSS, no build step.

The page uses only the public protocol (``/ws/stream``) and REST API. Its chart library,
lightweight-charts from npm, is not in the repository: ``make dashboard-assets`` installs it
into the cache directory, and ``FIML_DASHBOARD_CHART_LIBRARY`` may point elsewhere.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from runtime.settings import Settings

log = logging.getLogger("fiml.gateway.dashboard")

STATIC = Path(__file__).parent / "static"
CHART_LIBRARY = "node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs"
CHART_LIBRARY_URL = "/dashboard/vendor/lightweight-charts.mjs"
MISSING = (
    "the dashboard's chart library is missing at {path}: run `make dashboard-assets` "
    "or set FIML_DASHBOARD_CHART_LIBRARY"
)


def chart_library_path(settings: Settings) -> Path:
    """Where the lightweight-charts ES module is: the setting, else the cache directory."""
    if settings.dashboard_chart_library:
        return Path(settings.dashboard_chart_library)
    return Path(settings.cache_dir) / "dashboard" / CHART_LIBRARY


def mount_dashboard(app: FastAPI, settings: Settings) -> None:
    """Serve the page at ``/``, its files under ``/dashboard`` and the chart library."""
    library = chart_library_path(settings)
    if not library.is_file():
        log.warning(MISSING.format(path=library))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get(CHART_LIBRARY_URL, include_in_schema=False, response_model=None)
    async def chart_library() -> Response:
        if not library.is_file():
            return PlainTextResponse(MISSING.format(path=library), status_code=404)
        return FileResponse(library, media_type="text/javascript")

    app.mount("/dashboard", StaticFiles(directory=STATIC), name="dashboard")
