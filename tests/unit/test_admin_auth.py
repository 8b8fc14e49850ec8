"""The write access matrix: no token configured -> 403; configured: missing/wrong -> 401."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials

from seqgen_admin.auth import check_write_access


def creds(token: str) -> HTTPAuthorizationCredentials:
    return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)


@pytest.mark.parametrize("given", [None, creds("anything"), creds("")])
def test_no_configured_token_refuses_every_write(given: HTTPAuthorizationCredentials | None) -> None:
    with pytest.raises(HTTPException) as refused:
        check_write_access(None, given)
    assert refused.value.status_code == 403
    assert "SEQGEN_ADMIN_TOKEN" in str(refused.value.detail)


@pytest.mark.parametrize("given", [None, creds("secreT"), creds("secret "), creds("secre"),
                                   creds(""), creds("secretsecret")])
def test_missing_or_wrong_token_is_401_with_a_challenge(
    given: HTTPAuthorizationCredentials | None,
) -> None:
    with pytest.raises(HTTPException) as refused:
        check_write_access("secret", given)
    assert refused.value.status_code == 401
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}


def test_the_right_token_passes() -> None:
    check_write_access("secret", creds("secret"))
