"""Serving the web app: `GET /` is its page, `/web/...` its files. The app's security
headers (`http/security.py`: the Content-Security-Policy — no inline script or style,
nothing from another origin — nosniff, no referrer) reach them like every response.

The files are plain ES modules shipped in the wheel; nothing is built at install or at run
time. They are revalidated on every load (`no-cache` plus an ETag), so an upgrade reaches
browsers at once without fingerprinted names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def _revalidated(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-cache"
    return response


class _AppFiles(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        return _revalidated(super().file_response(*args, **kwargs))


async def index(request: Request) -> Response:
    """The single page; the modules route between login, chat and the admin views."""
    return _revalidated(FileResponse(STATIC_DIR / "index.html", media_type="text/html"))


routes = [
    Route("/", index, methods=["GET", "HEAD"]),
    Mount("/web", app=_AppFiles(directory=STATIC_DIR), name="web"),
]
