"""Limits of the public protocol (docs/protocol.md, "Requests"), as named constants."""

from __future__ import annotations

from typing import Final

MAX_VALUE: Final = 9_223_372_036_854_775_807
"""The largest number seqgen issues (2**63 - 1)."""

MAX_NAME_BYTES: Final = 200
"""A sequence name is 1 to 200 UTF-8 bytes."""

MAX_COUNT: Final = 1000
"""A batch request asks for 1 to 1000 numbers."""

MAX_FRAME_BYTES: Final = 65_536
"""Frames over 64 KiB are refused at the socket (ZMQ_MAXMSGSIZE)."""

DEFAULT_PUBLIC_PORT: Final = 6410
DEFAULT_ADMIN_PORT: Final = 6411
DEFAULT_CONTROL_PORT: Final = 6412
