"""The admin's HTTP models and its peer decoders, made from the one definition of a message.

A message is defined once, as a msgspec Struct whose fields are ``described``
(seqgen_common.fields). ``derive`` makes from it, at import:

- the pydantic model FastAPI serves and documents (OpenAPI): same fields in the
  same order, with their descriptions and examples; an int ``described`` with
  ``digits=True`` is a string of decimal digits; every field is required (the
  admin always sends each one);
- the msgspec Struct that decodes that model's JSON when a peer's admin answers
  (unknown fields ignored, the message's defaults kept, so an older peer is read).

``to_model`` turns a message into its model (what an endpoint returns);
``read_answer`` turns a peer's answer back into the message. ``DERIVED`` lists
every message derived, for the test that each view has the message's fields.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar, Union, get_args, get_origin

import msgspec
from pydantic import BaseModel, ConfigDict, Field, create_model

from seqgen_common.fields import FieldDoc, field_docs

__all__ = ["DERIVED", "DIGITS_PATTERN", "Derived", "Digits", "Model", "derive", "read_answer",
           "to_model"]

DIGITS_PATTERN: Final = r"^[0-9]+$"

Digits = Annotated[str, Field(pattern=DIGITS_PATTERN, examples=["100000"])]
"""A 64-bit value as a string of decimal digits."""


class Model(BaseModel):
    """The base of every HTTP model: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


S = TypeVar("S", bound=msgspec.Struct)
M = TypeVar("M", bound=BaseModel)
Convert = Callable[[Any, Callable[[Any], Any]], Any]
"""Converts a value, given how to convert a digits value."""


@dataclass(frozen=True)
class Derived:
    """A message and what is made from it."""

    message: type[msgspec.Struct]
    model: type[BaseModel]
    """What FastAPI serves and documents."""
    decoder: type[msgspec.Struct]
    """What reads a peer's answer (the model's JSON)."""
    out: tuple[tuple[str, Convert | None], ...]
    """Each field and how its value becomes the model's (None: as it is)."""
    back: tuple[tuple[str, Convert | None], ...]
    """Each field and how the decoder's value becomes the message's."""


DERIVED: Final[dict[type[msgspec.Struct], Derived]] = {}
"""Every message derived, by its type."""


def derive(message: type[msgspec.Struct], name: str, doc: str | None = None) -> type[BaseModel]:
    """Make (once) the model ``name`` and the peer decoder of ``message``; the model.

    A message a field holds (or a list of) must be derived first. ``doc`` is the model's
    description in the OpenAPI document."""
    fields = field_docs(message)
    definitions: dict[str, Any] = {f.name: (_model_type(f), _model_field(f)) for f in fields}
    model = create_model(name, __base__=Model, __doc__=doc, **definitions)
    decoder = msgspec.defstruct(f"{name}Answer", [_decoder_field(f) for f in fields],
                                kw_only=True, frozen=True, module=__name__)
    DERIVED[message] = Derived(message, model, decoder,
                               tuple((f.name, _out(f.hint, f.digits)) for f in fields),
                               tuple((f.name, _back(f.hint, f.digits)) for f in fields))
    return model


def _model_field(field: FieldDoc) -> Any:
    if field.examples is not None:
        return Field(description=field.description, examples=field.examples)
    return Field(description=field.description)


def _model_type(field: FieldDoc) -> Any:
    return _translate(field.hint, field.digits, lambda d: d.model, Digits)


def _decoder_field(field: FieldDoc) -> tuple[str, Any] | tuple[str, Any, Any]:
    hint = _translate(field.hint, field.digits, lambda d: d.decoder, str)
    if field.default_factory is not msgspec.NODEFAULT:
        return field.name, hint, msgspec.field(default_factory=field.default_factory)
    if field.default is not msgspec.NODEFAULT:
        return field.name, hint, field.default
    return field.name, hint


def _translate(hint: Any, digits: bool, view: Callable[[Derived], type[Any]],
               digits_type: Any) -> Any:
    """``hint`` with each message replaced by its view, and an int by ``digits_type`` when
    the field is ``digits``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return _translate(args[0], digits, view, digits_type)
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return view(_derived(hint))
    if origin in (Union, types.UnionType):
        return Union[tuple(_translate(a, digits, view, digits_type) for a in args)]  # noqa: UP007
    if origin in (list, dict):
        return origin[tuple(_translate(a, digits, view, digits_type) for a in args)]
    if digits and hint is int:
        return digits_type
    return hint


def _derived(message: type[msgspec.Struct]) -> Derived:
    try:
        return DERIVED[message]
    except KeyError:
        raise TypeError(f"{message.__name__} is held by a message: derive it first") from None


def _out(hint: Any, digits: bool) -> Convert | None:
    """How a message's value of type ``hint`` becomes the model's (None: as it is)."""
    return _walk(hint, digits, lambda m: lambda v, value: _model_of(v))


def _back(hint: Any, digits: bool) -> Convert | None:
    """How a decoded value of type ``hint`` becomes the message's (None: as it is)."""
    return _walk(hint, digits, lambda m: lambda v, value: _message_of(v, m, value))


def _walk(hint: Any, digits: bool, on_message: Callable[[type[msgspec.Struct]], Convert],
          ) -> Convert | None:
    """A conversion of values of type ``hint``: each message by ``on_message``'s, each digits
    value by the ``value`` the conversion is given; None when nothing needs converting."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return _walk(args[0], digits, on_message)
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return on_message(hint)
    if origin is list:
        item = _walk(args[0], digits, on_message)
        return None if item is None else lambda values, value: [item(v, value) for v in values]
    if origin in (Union, types.UnionType):
        inner = [_walk(a, digits, on_message) for a in args if a is not type(None)]
        if len(inner) != 1 or inner[0] is None:
            return None
        one = inner[0]
        return lambda v, value: None if v is None else one(v, value)
    if digits and hint is int:
        return lambda v, value: value(v)
    return None


def _model_of(message: msgspec.Struct) -> BaseModel:
    derived = _derived(type(message))
    return derived.model(**_fields(message, derived.out, str))


def _message_of(answer: msgspec.Struct, message: type[S], value: Callable[[str], int]) -> S:
    return message(**_fields(answer, _derived(message).back, value))


def _fields(source: msgspec.Struct, plan: tuple[tuple[str, Convert | None], ...],
            value: Callable[[Any], Any]) -> dict[str, Any]:
    return {name: getattr(source, name) if convert is None else convert(getattr(source, name), value)
            for name, convert in plan}


def to_model(message: msgspec.Struct, model: type[M]) -> M:
    """``message`` as its HTTP model (its digits as strings)."""
    out = _model_of(message)
    if not isinstance(out, model):
        raise TypeError(f"{type(message).__name__} is served as {type(out).__name__}, not "
                        f"{model.__name__}")
    return out


def read_answer(content: bytes, message: type[S], value: Callable[[str], int]) -> S:
    """A peer's JSON answer (the model of ``message``) as ``message``, each digits string
    through ``value`` (which raises for a bad one); msgspec.DecodeError (a ValueError) when
    the answer is not that model."""
    answer = msgspec.json.decode(content, type=_derived(message).decoder)
    return _message_of(answer, message, value)
