"""Logging set-up shared by the daemons: one format, to stderr, in the foreground."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Log records at ``level`` and above to stderr (supervisord captures it)."""
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
