"""``GET /``: the human status page (static HTML with inline CSS and JS, no external assets).

The page itself holds no data: its script reads ``/status`` and ``/sequences``
and renders them; see docs/admin.md for what it shows.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["page_router", "status_page_html"]


def status_page_html() -> str:
    """The page as shipped in the package (``seqgen_admin/static/index.html``)."""
    return (Path(__file__).parent / "static" / "index.html").read_text(encoding="utf-8")


def page_router() -> APIRouter:
    html = status_page_html()
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def status_page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    return router
