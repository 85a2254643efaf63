"""The portfolio manager's dashboard: one page and its static files, served by the API service.

The page is plain HTML, CSS and JavaScript under `static/` (no build step, no CDN, no inline
script or style, so the API's Content-Security-Policy can stay at `'self'`). It signs in at
`/oauth/token` with an API key and reads the `/v1` endpoints with the short-lived token, like
any other client: the routes here serve files only and need no credentials.

Chinese stock names need a CJK font, which the project's machines lack: the stylesheet names
Noto Sans CJK SC (shipped by the mplfonts package, as for the report's plots) with a
`unicode-range`, so the browser fetches it only when a page shows Chinese characters, once,
and falls back to the system's fonts when the package is absent.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

STATIC_DIR = Path(__file__).parent / "static"
# The page's files, by name: nothing else under static/ (or above it) is ever served.
STATIC_FILES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CJK_FONT = "noto-sans-cjk-sc.otf"
# Revalidated each hour: a new release's files reach an open dashboard on its next load.
STATIC_CACHE = "public, max-age=3600"
FONT_CACHE = "public, max-age=604800, immutable"  # 16 MB, unchanged between releases

dashboard_router = APIRouter(tags=["dashboard"], include_in_schema=False)


def _cjk_font() -> Path | None:
    """Noto Sans CJK SC from the mplfonts package, or None when it is not installed."""
    try:
        import mplfonts
    except ImportError:
        return None
    font = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    return font if font.is_file() else None


@dashboard_router.get("/dashboard")
def dashboard_page() -> FileResponse:
    """The page itself (sign-in, recommendations, performance, factors, models, health)."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@dashboard_router.get("/dashboard/")
def dashboard_slash() -> RedirectResponse:
    """`/dashboard/` would resolve the page's relative URLs one level too deep."""
    return RedirectResponse("../dashboard", status_code=308)


@dashboard_router.get("/dashboard/static/{name}")
def dashboard_static(name: str) -> FileResponse:
    """One of the page's files (a fixed list: no path from the request reaches the disk)."""
    if name == CJK_FONT:
        font = _cjk_font()
        if font is None:
            raise HTTPException(status_code=404, detail="Not Found")
        return FileResponse(font, media_type="font/otf", headers={"Cache-Control": FONT_CACHE})
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="Not Found")
    return FileResponse(
        STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": STATIC_CACHE}
    )
