"""``GET /ui``: the chat page, plain HTML and JavaScript from
``mailtriage/app/static`` (no build step).

The page itself needs no token; it asks for one and sends it with its calls to
``/v1/chat`` and ``/v1/messages/{queue_id}``, which check it like any other call.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from mailtriage.errors import NotFoundError

router = APIRouter(tags=["ui"], include_in_schema=False)

_FILES = {
    "index.html": "text/html; charset=utf-8",
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
}
# The page loads nothing from elsewhere and runs only its own script.
_SECURITY = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _static(name: str) -> Response:
    media_type = _FILES.get(name)
    if media_type is None:
        raise NotFoundError(f"no such file: /ui/{name}")
    body = resources.files("mailtriage.app").joinpath("static", name).read_bytes()
    return Response(body, media_type=media_type, headers=_SECURITY)


@router.get("/ui")
def page() -> Response:
    """The chat page."""
    return _static("index.html")


@router.get("/ui/{name}")
def asset(name: str) -> Response:
    """The page's script and style sheet."""
    return _static(name)
