"""One reading of msgspec's validation errors for the watch's schemas (scenario files,
control operations), so that each message names the key it is about."""

from __future__ import annotations

import msgspec


def fault(error: msgspec.ValidationError) -> tuple[str, str]:
    """(key path such as ``segment[1].activity``, or "" for the top level; the message)."""
    message, _, where = str(error).partition(" - at `$")
    return where.rstrip("`").lstrip("."), message
