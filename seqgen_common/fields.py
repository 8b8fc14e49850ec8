"""How a field of a message documents itself: the one place for its description.

A message is a msgspec Struct; each field's ``Annotated[..., described(...)]``
holds what every view of the message shows: the description and examples the
admin's OpenAPI document gives, whether a 64-bit value travels on HTTP as a
string of decimal digits (``digits=True``), and what else a view needs (a
Prometheus metric name, say), in ``extra``. ``field_docs`` reads them back;
seqgen_admin.derive makes the admin's HTTP models and peer decoders from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import msgspec

__all__ = ["FieldDoc", "described", "field_docs"]


def described(description: str, *, examples: list[Any] | None = None, digits: bool = False,
              **extra: Any) -> msgspec.Meta:
    """The metadata of one field: ``digits`` marks an int that the admin's HTTP JSON carries
    as a string of decimal digits (JSON numbers lose precision above 2**53); ``extra`` holds
    anything else a view of the field needs."""
    if digits:
        extra["digits"] = True
    return msgspec.Meta(description=description, examples=examples, extra=extra or None)


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One field of a Struct as ``described`` it."""

    name: str
    hint: Any
    """The type, without the field's own ``Annotated`` metadata."""
    description: str | None
    examples: list[Any] | None
    extra: dict[str, Any]
    default: Any
    """``msgspec.NODEFAULT`` when the field has none (or has a factory)."""
    default_factory: Any

    @property
    def digits(self) -> bool:
        """An int that the admin's HTTP JSON carries as decimal digits."""
        return bool(self.extra.get("digits"))


def field_docs(struct: type[msgspec.Struct]) -> list[FieldDoc]:
    """The fields of ``struct`` in order (its tag excluded), with their metadata merged."""
    hints = get_type_hints(struct, include_extras=True)
    docs: list[FieldDoc] = []
    for info in msgspec.structs.fields(struct):
        hint = hints[info.name]
        description: str | None = None
        examples: list[Any] | None = None
        extra: dict[str, Any] = {}
        if get_origin(hint) is Annotated:
            hint, *metas = get_args(hint)
            for meta in metas:
                if isinstance(meta, msgspec.Meta):
                    description = meta.description or description
                    examples = meta.examples or examples
                    extra.update(meta.extra or {})
        docs.append(FieldDoc(info.name, hint, description, examples, extra, info.default,
                             info.default_factory))
    return docs
