"""The one exception family a decoder may raise.

A peer can send anything; callers catch ``ProtocolError`` and nothing else, so every
fault must name the characteristic and what was wrong with the bytes.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Bytes (or a value to encode) that do not fit a characteristic's layout."""

    def __init__(self, characteristic: str, fault: str) -> None:
        super().__init__(f"{characteristic}: {fault}")
        self.characteristic = characteristic
        self.fault = fault


class LengthError(ProtocolError):
    """Too few or too many bytes."""


class ReservedValueError(ProtocolError):
    """A reserved flag, opcode or enum value."""


class RangeError(ProtocolError):
    """A value outside what the field can carry or what the specification allows."""


class TextError(ProtocolError):
    """Text that is not valid UTF-8, or too long."""
