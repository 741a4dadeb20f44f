"""Alerts service codecs: notifications, removals and calls (phone -> watch), call actions back.

Texts travel as UTF-8 with a per-field byte budget sized so that the largest Alert
Notification fits one ATT write at MTU 247. Senders shorten with ``truncate_utf8``;
decoders reject anything over budget rather than guess. Calls carry a display name and
never a phone number: there is no field for one, and a name that looks like a number is
refused on both sides.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Self

from protocol import uuids
from protocol._bytes import Reader, Writer, encode_utf8, enum_member
from protocol.errors import RangeError
from protocol.profile import characteristic

ALERT_NOTIFICATION = characteristic(uuids.ALERT_NOTIFICATION).name
ALERT_REMOVAL = characteristic(uuids.ALERT_REMOVAL).name
CALL_STATE = characteristic(uuids.CALL_STATE).name
CALL_ACTION = characteristic(uuids.CALL_ACTION).name

MAX_APP_BYTES = 24
MAX_TITLE_BYTES = 48
MAX_BODY_BYTES = 160
MAX_CALLER_BYTES = 64

_DIGITS = frozenset("0123456789")
_DIALLING = _DIGITS | frozenset("+-(). /")


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Longest prefix of ``text`` whose UTF-8 form fits ``max_bytes``, cut between characters."""
    data = text.encode("utf-8", "replace")  # a lone surrogate becomes "?"
    if len(data) <= max_bytes:
        return data.decode("utf-8")
    # A UTF-8 continuation byte is 0b10xxxxxx; back off until the cut starts a character.
    cut = max_bytes
    while cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return data[:cut].decode("utf-8")


class AlertCategory(enum.IntEnum):
    OTHER = 0
    MESSAGE = 1
    EMAIL = 2
    SOCIAL = 3
    CALENDAR = 4


@dataclass(frozen=True, slots=True)
class AlertNotification:
    """A notification shown on the watch; ``notification_id`` is the phone's handle for it."""

    notification_id: int
    category: AlertCategory
    app: str
    title: str
    body: str

    @classmethod
    def truncated(
        cls, notification_id: int, category: AlertCategory, app: str, title: str, body: str
    ) -> Self:
        """Build one whose texts are cut (on character boundaries) to their byte budgets."""
        return cls(
            notification_id,
            category,
            truncate_utf8(app, MAX_APP_BYTES),
            truncate_utf8(title, MAX_TITLE_BYTES),
            truncate_utf8(body, MAX_BODY_BYTES),
        )

    def encode(self) -> bytes:
        app = encode_utf8(self.app, ALERT_NOTIFICATION, "app name", MAX_APP_BYTES)
        title = encode_utf8(self.title, ALERT_NOTIFICATION, "title", MAX_TITLE_BYTES)
        body = encode_utf8(self.body, ALERT_NOTIFICATION, "body", MAX_BODY_BYTES)
        w = Writer(ALERT_NOTIFICATION)
        w.u32(self.notification_id, "notification id").u8(int(self.category), "category")
        w.u8(len(app)).u8(len(title)).u8(len(body))
        return w.raw(app).raw(title).raw(body).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, ALERT_NOTIFICATION)
        notification_id = r.u32("notification id")
        category = enum_member(AlertCategory, r.u8("category"), ALERT_NOTIFICATION, "category")
        lengths = r.u8("app name length"), r.u8("title length"), r.u8("body length")
        texts = []
        for what, length, limit in zip(
            ("app name", "title", "body"),
            lengths,
            (MAX_APP_BYTES, MAX_TITLE_BYTES, MAX_BODY_BYTES),
            strict=True,
        ):
            check_text_length(ALERT_NOTIFICATION, what, length, limit)
            texts.append(r.utf8(length, what))
        r.end()
        return cls(notification_id, category, *texts)


def check_text_length(characteristic: str, what: str, length: int, limit: int) -> None:
    """Refuse a declared text length over the field's byte budget."""
    if length > limit:
        raise RangeError(characteristic, f"{what} is {length} bytes, at most {limit}")


@dataclass(frozen=True, slots=True)
class AlertRemoval:
    """The phone dismissed a notification: the watch drops it by id."""

    notification_id: int

    def encode(self) -> bytes:
        return Writer(ALERT_REMOVAL).u32(self.notification_id, "notification id").getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, ALERT_REMOVAL)
        notification_id = r.u32("notification id")
        r.end()
        return cls(notification_id)


class CallStatus(enum.IntEnum):
    INCOMING = 1
    ACCEPTED = 2
    REJECTED = 3
    ENDED = 4
    MISSED = 5


def _check_caller(name: str) -> None:
    """Digits and dialling punctuation only, three digits or more: a number, not a name."""
    if set(name) <= _DIALLING and sum(c in _DIGITS for c in name) >= 3:
        raise RangeError(CALL_STATE, "display name looks like a phone number; send a name or ''")


@dataclass(frozen=True, slots=True)
class CallState:
    """A call's state; an empty ``display_name`` is the privacy ("hidden caller") mode."""

    call_id: int
    status: CallStatus
    display_name: str = ""

    def encode(self) -> bytes:
        _check_caller(self.display_name)
        w = Writer(CALL_STATE).u32(self.call_id, "call id").u8(int(self.status), "call state")
        return w.utf8(self.display_name, "display name", MAX_CALLER_BYTES).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, CALL_STATE)
        call_id = r.u32("call id")
        status = enum_member(CallStatus, r.u8("call state"), CALL_STATE, "call state")
        check_text_length(CALL_STATE, "display name", r.remaining, MAX_CALLER_BYTES)
        name = r.utf8(r.remaining, "display name")
        _check_caller(name)
        return cls(call_id, status, name)


class CallActionKind(enum.IntEnum):
    ACCEPT = 1
    REJECT = 2
    MUTE = 3


@dataclass(frozen=True, slots=True)
class CallAction:
    """The wearer pressed a call button on the watch."""

    call_id: int
    action: CallActionKind

    def encode(self) -> bytes:
        w = Writer(CALL_ACTION).u32(self.call_id, "call id")
        return w.u8(int(self.action), "action").getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, CALL_ACTION)
        call_id = r.u32("call id")
        action = enum_member(CallActionKind, r.u8("action"), CALL_ACTION, "action")
        r.end()
        return cls(call_id, action)
