"""A Bluetooth device address, parsed and checked once where it enters.

Users type addresses in any case, config files and manifests hold them, bleak reports
them: each of those is an ``Address`` from the moment it is read, so the rest of the
code compares, stores and looks up one canonical form ("F0:5A:6E:00:00:01") and a
typo is refused with an example instead of failing deep inside a Bluetooth stack.
"""

from __future__ import annotations

import re
from typing import Final

EXAMPLE: Final = "F0:5A:6E:00:00:01"
# Six bytes as hex pairs, all separated by ':' or all by '-'.
_FORM: Final = re.compile(r"[0-9A-F]{2}(?P<sep>[:-])[0-9A-F]{2}(?:(?P=sep)[0-9A-F]{2}){4}")


class AddressError(ValueError):
    """Text that is not a Bluetooth device address; the message shows the expected form."""


class Address(str):
    """A checked, upper-case, colon-separated device address; still a ``str`` for the
    stores and bleak that take text."""

    __slots__ = ()

    def __new__(cls, text: str) -> Address:
        if isinstance(text, Address):
            return text
        candidate = str(text).strip().upper()
        if not _FORM.fullmatch(candidate):
            raise AddressError(
                f"not a Bluetooth address: {str(text)!r} "
                f"(six hex byte pairs separated by colons, e.g. {EXAMPLE})"
            )
        return super().__new__(cls, candidate.replace("-", ":"))
