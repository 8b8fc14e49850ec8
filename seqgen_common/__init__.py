"""Shared by every seqgen process: wire and control codecs, errors, limits, endpoints.

Imports nothing from the other seqgen packages (it is the bottom layer).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("seqgen")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
