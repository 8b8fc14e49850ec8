"""Who may write: ``Authorization: Bearer <token>`` against the configured token.

No token configured: every write is refused (403), whatever the request says.
A token configured: a missing or wrong token is 401 (compared in constant
time, so the answer time does not leak how much of a guess was right).
"""

from __future__ import annotations

import secrets

from fastapi import HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["bearer", "check_write_access"]

bearer = HTTPBearer(
    auto_error=False,
    description="The admin token (--token or SEQGEN_ADMIN_TOKEN of seqgen-admin).",
)
"""The security scheme: documents the Authorize button in /docs, parses the header."""

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def check_write_access(
    configured: str | None, credentials: HTTPAuthorizationCredentials | None
) -> None:
    """Return if the request may write; raise HTTPException 403 or 401 otherwise."""
    if configured is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this seqgen-admin has no token, so it refuses everything that needs one (writes "
            "and GET /backup): start it with SEQGEN_ADMIN_TOKEN, --token-file or --token",
        )
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this needs the header Authorization: Bearer <token>",
            headers=_CHALLENGE,
        )
    if not secrets.compare_digest(credentials.credentials.encode(), configured.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong token", headers=_CHALLENGE
        )
