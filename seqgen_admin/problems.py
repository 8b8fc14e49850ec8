"""4xx answers an operator can read: one sentence per request instead of pydantic's list.

FastAPI answers a request its models refuse with ``{"detail": [{loc, msg, ctx...}]}``, in
which a malformed floor value shows the 1,300-character regular expression of
``VALUE_PATTERN``. Here the same refusal is ``{"detail": "<sentence>", "fields": [...]}``:
which part of the request is wrong, what it must be, and what was sent. The OpenAPI
schema is changed to match (every 422 documents ``InvalidRequest``). Starlette's bare "Not
Found" and "Method Not Allowed" become sentences that name the request too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from seqgen_admin.models import DIGITS_PATTERN, VALUE_PATTERN, Problem
from seqgen_common.limits import MAX_VALUE

__all__ = ["InvalidRequest", "describe", "install"]

_PATTERNS: Final = {
    VALUE_PATTERN: f"must be the decimal digits of a number from 0 to {MAX_VALUE}, as a string",
    DIGITS_PATTERN: "must be decimal digits (0-9), as a string",
}
_PLACES: Final = {"body": "body field", "query": "query parameter", "path": "path parameter",
                  "header": "header"}
_SHOWN_CHARS: Final = 40


class InvalidRequest(Problem):
    """A request that does not have the documented form (422)."""

    fields: list[str] = Field(description="The parts of the request that are wrong, as "
                              "`body.value`, `query.limit`, `path.name`, or `body`.")


def _place(loc: Sequence[Any]) -> tuple[str, str]:
    """(``body.value``, ``the body field "value"``) of a pydantic error location."""
    where = str(loc[0]) if loc else "body"
    names = [str(part) for part in loc[1:]]
    if not names:
        return where, f"the request's {where}"
    dotted = ".".join(names)
    return f"{where}.{dotted}", f"the {_PLACES.get(where, where)} \"{dotted}\""


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _problem(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(ctx.get("pattern")), "does not have the documented form")
    if kind == "json_invalid":
        return f"is not valid JSON ({ctx.get('error', 'cannot be decoded')})"
    if kind == "missing":
        return "is missing"
    if kind == "extra_forbidden":
        return "is not expected here (no such field)"
    message = str(error.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ")
    return f"is wrong: {message[:1].lower()}{message[1:]}"


def describe(errors: Sequence[Mapping[str, Any]]) -> InvalidRequest:
    """The sentence and fields of pydantic's errors."""
    sentences: list[str] = []
    fields: list[str] = []
    for error in errors:
        field, place = _place(error.get("loc", ()))
        sentence = f"{place} {_problem(error)}"
        if "input" in error and error.get("type") not in ("missing", "json_invalid"):
            sentence += f" (got {_shown(error['input'])})"
        if field not in fields:
            fields.append(field)
        if sentence not in sentences:
            sentences.append(sentence)
    detail = "Invalid request: " + "; ".join(sentences) + "." if sentences else "Invalid request."
    return InvalidRequest(detail=detail, fields=fields)


async def _on_http(request: Request, exc: Exception) -> Response:
    """Starlette's bare "Not Found" and "Method Not Allowed" as sentences; others unchanged."""
    assert isinstance(exc, StarletteHTTPException)
    detail, path = exc.detail, request.url.path
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No such endpoint: {request.method} {path} (the endpoints are listed at /docs)."
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        allowed = (exc.headers or {}).get("Allow")
        detail = f"{request.method} is not allowed on {path}" + (f": use {allowed}." if allowed else ".")
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _on_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(describe(exc.errors()).model_dump(), status_code=422)


def _documented(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with every 422 answering ``InvalidRequest``."""

    def schema() -> dict[str, Any]:
        document = openapi()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if "InvalidRequest" in schemas:  # already rewritten (the document is cached)
            return document
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                answer = operation.get("responses", {}).get("422")
                if answer is not None:
                    answer["description"] = "The request does not have the documented form: " \
                        "`detail` says what to change."
                    answer["content"] = {"application/json": {
                        "schema": {"$ref": "#/components/schemas/InvalidRequest"}}}
        schemas["InvalidRequest"] = InvalidRequest.model_json_schema(
            ref_template="#/components/schemas/{model}")
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        return document

    return schema


def install(app: FastAPI) -> None:
    """Readable 422 answers, and the schema that documents them."""
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.openapi = _documented(app.openapi)  # type: ignore[method-assign]
