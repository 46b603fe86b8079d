"""The FastAPI application factory: API, pages, static files, limits and error handling.

Run it with ``make serve`` (``python -m webapp``): uvicorn on ``webapp.host:webapp.port``
(127.0.0.1:8000 by default, localhost only). FastAPI/uvicorn: a standard ASGI stack whose OpenAPI
document comes from the route signatures, and whose thread pool runs the predictions off the event loop.
"""
from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from pipelines import ConfigError, DataError

from .config import Settings
from .services.dataset import DatasetBrowser
from .services.models import ModelStore
from .services.uploads import BodyLimit, UploadError

HERE = Path(__file__).resolve().parent
log = logging.getLogger("webapp")


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app serving ``settings`` (default: ``params.yaml`` of the repository)."""
    from . import api, pages

    settings = settings or Settings.from_params()
    # FastAPI's /docs and /redoc pull Swagger UI / ReDoc from a CDN: off; /api-docs renders /openapi.json locally.
    app = FastAPI(title="ECG beat classifier", version="1.0", docs_url=None, redoc_url=None,
                  description="Classify an ECG beat image or a whole record with the models `dvc repro` builds.")
    app.state.settings = settings
    app.state.models = ModelStore(settings.models_dir, {"beat": settings.webapp["beat_run"],
                                                        "record": settings.webapp["record_run"]}, settings.reports_dir)
    app.state.dataset = DatasetBrowser(settings.images_dir)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(BodyLimit, limits={"/api/beat": settings.limit("max_image_mb") + 64_000,
                                          "/api/record": settings.limit("max_record_mb") + 1_064_000})

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError):
        log.error("configuration error: %s", exc)
        return JSONResponse({"detail": f"server configuration: {exc}"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse({"detail": problems}, status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)      # the traceback stays in the server log
        return JSONResponse({"detail": "internal error (logged on the server)"}, status_code=500)

    return app
