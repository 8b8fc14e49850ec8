"""The token of a write, checked before its body is read.

FastAPI reads a body before it solves an endpoint's dependencies, so a bearer
check written as a dependency runs only after the whole body is in memory. This
pure ASGI middleware runs first: a request to a write route (one that depends
on ``require_writer``) without a valid token gets 401 or 403 before any of its
body is read. (The size of every body is capped by FastAPI's own
``max_body_size``: 413 at once when Content-Length says too much, else as soon
as too many bytes have arrived.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_BYTES", "TOO_LARGE", "ExplainTooLarge", "WriteGuard"]

MAX_BODY_BYTES: Final = 4096
"""The largest request body the admin reads (a floor, a recovery margin: far smaller)."""
TOO_LARGE: Final = (f"The body is larger than {MAX_BODY_BYTES} bytes, the most this admin "
                    "reads: send the JSON documented for this endpoint, which is far smaller.")
"""The ``detail`` of a 413 (FastAPI's own answer is the bare text ``Content Too Large``)."""
_TOO_LARGE_BODY: Final = JSONResponse({"detail": TOO_LARGE}).body
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WriteGuard:
    """ASGI middleware: 401/403 for writes without the token, before their body is read."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Callable[[], list[BaseRoute]],
        needs_token: Callable[[BaseRoute], bool],
        check: Callable[[HTTPAuthorizationCredentials | None], None],
    ) -> None:
        self.app = app
        self._routes = routes
        self._needs_token = needs_token
        self._check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS and self._is_write(scope):
            try:
                self._check(_credentials(Headers(scope=scope).get("authorization")))
            except HTTPException as exc:
                refusal = JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                       headers=exc.headers)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _is_write(self, scope: Scope) -> bool:
        for route in self._routes():
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return self._needs_token(route)
        return False


class ExplainTooLarge:
    """ASGI wrapper of the whole app: FastAPI's 413 (``max_body_size``, which wraps the app
    outside every middleware) told as a sentence in JSON, like every other error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS:
            send = _explain_too_large(send)
        await self.app(scope, receive, send)


def _explain_too_large(send: Send) -> Send:
    """``send`` with FastAPI's 413 (``max_body_size``) told as a sentence in JSON, like every
    other error of the admin."""
    replaced = False

    async def explained(message: Message) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and message["status"] == 413:
            replaced = True
            await send({"type": "http.response.start", "status": 413, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_TOO_LARGE_BODY)).encode()),
                (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": _TOO_LARGE_BODY, "more_body": False})
        elif not (replaced and message["type"] == "http.response.body"):
            await send(message)

    return explained


def _credentials(header: str | None) -> HTTPAuthorizationCredentials | None:
    """The bearer credentials of an Authorization header, as FastAPI's HTTPBearer reads them."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token)
