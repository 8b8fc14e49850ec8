"""Each message is defined once; its HTTP model and its peer decoder are made from it.

For every message in ``DERIVED`` (filled as seqgen_admin.models is imported):
the model and the decoder have exactly the message's fields, in order, with
its descriptions; a message round-trips through the JSON the admin serves and
the decoder a peer reads it with. And nothing mirrors a message by hand: every
schema of the OpenAPI document is a derived model or one listed below as a
model of no message, and no other msgspec Struct is written in seqgen_admin.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
import pytest

import seqgen_admin
from seqgen_admin import models  # noqa: F401 - derives every model
from seqgen_admin.app import create_app
from seqgen_admin.config import AdminConfig
from seqgen_admin.derive import DERIVED, DIGITS_PATTERN, Derived, derive, read_answer, to_model
from seqgen_admin.messages import Changes
from seqgen_admin.metrics import server_metric_families
from seqgen_common.control import Status
from seqgen_common.fields import described, field_docs
from seqgen_common.limits import MAX_VALUE

NOT_MESSAGES: dict[str, str] = {
    "Problem": "the body of every error (FastAPI's own handlers make it too)",
    "InvalidRequest": "FastAPI's 422 body (seqgen_admin.problems)",
    "Health": "the admin alone answers /healthz: no message",
    "FloorRequest": "a request body, read by pydantic only",
    "RecoverRequest": "a request body, read by pydantic only",
    "ResizeRequest": "a request body, read by pydantic only",
    "ResizeStepRequest": "a request body, read by pydantic only",
    "ClusterView": "composed by this admin from its plane; no peer reads it",
    "PeerState": "this admin's PeerView as served; no peer reads it",
    "RecoverResult": "composed from recover.Outcome; no peer reads it",
    "PeerAsked": "composed from recover.PeerAnswer; no peer reads it",
    "ResizeResult": "composed from resize.ResizeOutcome; no peer reads it",
    "ServerResized": "LayoutOut and who answered",
}
"""The OpenAPI schemas that are not derived from a message, and why."""

HAND_WRITTEN_STRUCTS: dict[str, str] = {}
"""msgspec Structs of seqgen_admin outside seqgen_admin.messages, and why."""


def derived() -> list[Derived]:
    return list(DERIVED.values())


def ids(entry: Derived) -> str:
    return entry.model.__name__


def names_of(struct: type[msgspec.Struct]) -> list[str]:
    return [f.name for f in msgspec.structs.fields(struct)]


@pytest.mark.parametrize("entry", derived(), ids=ids)
def test_the_model_and_the_decoder_have_the_messages_fields(entry: Derived) -> None:
    fields = names_of(entry.message)
    assert list(entry.model.model_fields) == fields
    assert names_of(entry.decoder) == fields
    assert [name for name, _ in entry.out] == fields
    assert [name for name, _ in entry.back] == fields


@pytest.mark.parametrize("entry", derived(), ids=ids)
def test_the_model_documents_each_field_as_the_message_does(entry: Derived) -> None:
    schema = entry.model.model_json_schema(mode="serialization")
    assert schema["required"] == names_of(entry.message)  # the admin sends every field
    for field in field_docs(entry.message):
        assert field.description, f"{entry.message.__name__}.{field.name} has no description"
        shown = schema["properties"][field.name]
        if "$ref" not in shown:  # (pydantic shows no description beside a reference)
            assert shown["description"] == field.description
        if field.digits:
            assert shown["type"] == "string" and shown["pattern"] == DIGITS_PATTERN
            assert shown["examples"] == ["100000"]


def sample(hint: Any, digits: bool = False) -> Any:
    """A value of type ``hint`` (a digits int is one JSON numbers cannot hold exactly)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return sample(args[0], digits)
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return hint(**{f.name: sample(f.hint, f.digits) for f in field_docs(hint)})
    if origin is Literal:
        return args[0]
    if origin in (Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), digits)
    if origin is list:
        return [sample(args[0], digits), sample(args[0], digits)]
    if origin is dict:
        return {"OK": 7, "BAD_NAME": 1}
    values = {bool: True, float: 2.5, str: "x/ü", datetime: datetime(2026, 12, 6, 1, 2, 3, 456789,
                                                                          tzinfo=UTC)}
    if hint is int:
        return MAX_VALUE - 1 if digits else 3
    return values[hint]


@pytest.mark.parametrize("entry", derived(), ids=ids)
def test_a_message_round_trips_through_what_the_admin_serves_and_a_peer_reads(
        entry: Derived) -> None:
    message = sample(entry.message)
    served = to_model(message, entry.model).model_dump_json().encode()
    for field in field_docs(entry.message):
        if field.digits:
            assert f'"{field.name}":"{MAX_VALUE - 1}"'.encode() in served
    assert read_answer(served, entry.message, int) == message
    newer = served[:-1] + b',"from_a_newer_peer":1}'  # a field this admin does not know
    assert read_answer(newer, entry.message, int) == message


def test_a_bad_value_in_a_peers_answer_goes_through_the_check_given() -> None:
    entry = DERIVED[Changes]
    served = to_model(sample(entry.message), entry.model).model_dump_json().encode()
    checked: list[str] = []

    def check(text: str) -> int:
        checked.append(text)
        raise ValueError(f"not a value: {text}")

    with pytest.raises(ValueError, match="not a value"):
        read_answer(served.replace(str(MAX_VALUE - 1).encode(), b"99999999999999999999"),
                    entry.message, check)
    assert checked == ["99999999999999999999"]
    with pytest.raises(msgspec.ValidationError):
        read_answer(served.replace(b'"seq":3', b'"seq":"3"'), entry.message, int)


class _Grown(Status, kw_only=True, frozen=True):
    """Status with one more field, as a maintainer would add it."""

    added: Annotated[int, described("A field added to the message.", digits=True)] = 0


@pytest.fixture
def grown() -> Iterator[Derived]:
    derive(_Grown, "GrownStatus")
    try:
        yield DERIVED[_Grown]
    finally:
        del DERIVED[_Grown]


def test_a_field_added_to_a_message_is_served_and_read_back(grown: Derived) -> None:
    assert list(grown.model.model_fields)[-1] == "added"
    assert names_of(grown.decoder)[-1] == "added"
    message = sample(_Grown)
    served = to_model(message, grown.model).model_dump_json().encode()
    assert f'"added":"{MAX_VALUE - 1}"'.encode() in served
    assert read_answer(served, _Grown, int) == message
    older = to_model(sample(Status), DERIVED[Status].model).model_dump_json().encode()
    assert read_answer(older, _Grown, int).added == 0  # an older peer's answer: the default


class _Inner(msgspec.Struct):
    value: Annotated[int, described("v")]


class _Outer(msgspec.Struct):
    inner: Annotated[_Inner, described("i")]


def test_a_message_held_by_another_is_derived_first() -> None:
    with pytest.raises(TypeError, match="_Inner is held by a message: derive it first"):
        derive(_Outer, "Outer")
    assert _Outer not in DERIVED


def test_every_schema_of_the_openapi_document_is_derived_or_of_no_message() -> None:
    schemas = set(create_app(AdminConfig(token="t")).openapi()["components"]["schemas"])
    derived_names = {entry.model.__name__ for entry in derived()}
    assert derived_names <= schemas, "a derived model that no endpoint serves"
    assert schemas - derived_names == set(NOT_MESSAGES), (
        "a new model: derive it from its message (seqgen_admin.derive), or say in "
        "NOT_MESSAGES why it is of no message")


def test_no_struct_of_seqgen_admin_is_written_beside_its_message() -> None:
    found: dict[str, type[msgspec.Struct]] = {}
    for module_info in pkgutil.iter_modules(seqgen_admin.__path__, "seqgen_admin."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, msgspec.Struct)
                    and value.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = value
    messages = {k for k, v in found.items() if k.startswith("seqgen_admin.messages.")}
    assert messages == {f"seqgen_admin.messages.{m.__name__}" for m in DERIVED
                        if m.__module__ == "seqgen_admin.messages"}, "a message not derived"
    assert set(found) - messages == set(HAND_WRITTEN_STRUCTS), (
        "a msgspec Struct outside seqgen_admin.messages: a peer's answer is read with "
        "seqgen_admin.derive.read_answer")


def test_status_gauges_and_info_come_from_the_status_fields() -> None:
    status = sample(Status)
    families = {f.name: f for f in server_metric_families(status)}
    for field in field_docs(Status):
        if "gauge" in field.extra:
            family = families[field.extra["gauge"]]
            assert family.documentation == field.extra["help"]
            assert family.samples[0].value == float(getattr(status, field.name))
        if field.extra.get("info"):
            assert families["seqgen_server"].samples[0].labels[field.name] == str(
                getattr(status, field.name))
