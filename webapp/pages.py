"""The HTML pages: classify (beat image, record), the dataset browser, the benchmark.

The classify page calls the JSON API from its script (``static/app.js``); every asset is served by
the app (no CDN: the page works offline).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from .services.beatcheck import RULE

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)
FIGURE_RE = re.compile(r"^[A-Za-z0-9_.-]+\.png$")


@router.get("/", response_class=HTMLResponse)
async def index(request: Request):
    state = request.app.state
    return templates.TemplateResponse(request, "index.html", {"models": state.models.status(), "rule": RULE,
                                                              "page": "classify"})


@router.get("/api-docs", response_class=HTMLResponse)
async def api_docs(request: Request):
    """The OpenAPI document as a page (no CDN-hosted Swagger UI)."""
    spec = request.app.openapi()
    return templates.TemplateResponse(request, "api.html", {"page": "api", "spec": spec})


@router.get("/dataset", response_class=HTMLResponse)
async def dataset(request: Request, method: Optional[str] = None, cls: Optional[str] = Query(None, alias="class"),
                  record: Optional[str] = None, crop: Optional[str] = "0", page: int = 1):
    browser = request.app.state.dataset
    methods = browser.methods()
    context = {"page": "dataset", "methods": methods, "method": None, "result": None, "images_dir": browser.images_dir}
    if methods:
        method = method if method in methods else methods[0]
        crop_value = None if crop in (None, "", "all") else int(crop) if str(crop).isdigit() else 0
        from starlette.concurrency import run_in_threadpool
        context["result"] = await run_in_threadpool(lambda: browser.page(method, cls=cls or None, record=record or None,
                                                                         crop=crop_value, page=page))
        context["method"] = method
    return templates.TemplateResponse(request, "dataset.html", context)


@router.get("/benchmark", response_class=HTMLResponse)
async def benchmark(request: Request):
    from markdown_it import MarkdownIt

    reports = request.app.state.settings.reports_dir
    path = reports / "benchmark.md"
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(path.read_text()) if path.is_file() else None
    figures = sorted(p.relative_to(reports / "figures").as_posix() for p in (reports / "figures").rglob("*.png")) \
        if (reports / "figures").is_dir() else []
    return templates.TemplateResponse(request, "benchmark.html", {"page": "benchmark", "html": html, "figures": figures})


@router.get("/figures/{sub}/{name}")
@router.get("/figures/{name}")
async def figure(request: Request, name: str, sub: Optional[str] = None):
    """A figure of ``reports/figures`` (names checked against a pattern and the listing: no client path)."""
    base = request.app.state.settings.reports_dir / "figures"
    if not FIGURE_RE.match(name) or (sub is not None and not re.match(r"^[A-Za-z0-9_-]+$", sub)):
        return HTMLResponse("not found", status_code=404)
    listed = {p.relative_to(base).as_posix(): p for p in base.rglob("*.png")} if base.is_dir() else {}
    key = f"{sub}/{name}" if sub else name
    if key not in listed:
        return HTMLResponse("not found", status_code=404)
    return FileResponse(listed[key], media_type="image/png")
