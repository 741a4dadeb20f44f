"""The agent's log files: daily rotation, 7 days kept, redacted before they are written.

Policy section 1 keeps "the latest log information within 7 days" and deletes older
logs automatically; PR-LOGS adds that no health value, notification content or
identifier is ever written in clear. Redaction is the handler's ``logging.Formatter``,
so it covers records of every logger that propagates to it, tracebacks included, and it
leaves the record itself as it was for every other handler (the record is shared).
Code should still pass personal values wrapped in ``Private(...)``: pattern matching is
the safety net, not the plan.
"""

from __future__ import annotations

import errno
import logging
import logging.handlers
import os
import re
import sys
import time
import zipfile
from collections.abc import Callable
from io import TextIOWrapper
from pathlib import Path

LOGS_DIR = "logs"
LOG_NAME = "phoneagent.log"
KEEP_DAYS = 7
REDACTED = "<redacted>"

_MAC = re.compile(r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# International (+...) or North American layouts; bare digit runs are left alone so that
# sequence numbers and Unix times stay readable.
_PHONE = re.compile(r"\+\d[\d ()-]{6,}\d|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b")
# key=value / key: value pairs whose value is personal, in f-strings, reprs and dicts.
_PERSONAL_KEYS = (
    "name|title|text|body|content|message|caller|contact|sender|number|phone|email|serial"
    "|address|pseudonym|age|age_years|birth_date|sex|height|height_cm|weight|weight_decikg"
    "|heart_rate|hr|bpm|steps|spo2|skin_temperature|temperature|raw|value|values"
)
_PAIR = re.compile(
    rf"""(?P<key>['"]?\b(?:{_PERSONAL_KEYS})\b['"]?\s*[=:]\s*)"""
    r"""(?P<value>'[^']*'|"[^"]*"|\[[^\]]*\]|<[^>]*>|[^\s,;)}\]]+)""",
    re.IGNORECASE,
)
# A number with a health unit after it: "72 bpm", "97.5 %", "36.4 degC", "70 kg".
_MEASURE = re.compile(r"-?\d+(?:\.\d+)?\s*(?:bpm|%|degC|°C|kg|cm|steps)(?!\w)", re.IGNORECASE)


class Private:
    """Wraps a personal value passed to a log call; it renders as ``<redacted>``."""

    __slots__ = ("_value",)

    def __init__(self, value: object) -> None:
        self._value = value

    def __str__(self) -> str:
        return REDACTED

    __repr__ = __str__


def redact(text: str) -> str:
    """``text`` with MAC addresses, e-mails, phone numbers and personal values replaced."""
    text = _MAC.sub("<mac>", text)
    text = _EMAIL.sub("<email>", text)
    text = _PAIR.sub(lambda m: m.group("key") + REDACTED, text)
    text = _MEASURE.sub(REDACTED, text)
    return _PHONE.sub("<phone>", text)


class RepeatFilter(logging.Filter):
    """Another library's message repeated without end is written at its 1st..10th, 100th,
    1000th, ... occurrence (with its count), not every time.

    A peer decides how often Bumble warns (an unsolicited notification, a confirmation
    nobody asked for, one per PDU): unfiltered, a hostile watch fills the disk. Our own
    messages are always written. Counts are kept per message template, for a bounded
    number of templates.
    """

    KEEP = 10
    TEMPLATES = 512

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("phoneagent"):
            return True
        key = (record.name, str(record.msg))
        count = self._counts.pop(key, 0) + 1
        if len(self._counts) >= self.TEMPLATES:
            del self._counts[next(iter(self._counts))]  # the least recently seen
        self._counts[key] = count
        if count <= self.KEEP:
            return True
        if str(count).rstrip("0") != "1":  # not a power of ten
            return False
        setattr(record, _OCCURRENCE, count)  # the formatter says so; the message stays
        return True


_OCCURRENCE = "phoneagent_occurrence"


class RedactingFormatter(logging.Formatter):
    """Formats a record, with its traceback, and redacts the whole line; says which
    occurrence a ``RepeatFilter`` let through."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        count = getattr(record, _OCCURRENCE, None)
        if count is not None:
            head, newline, rest = text.partition("\n")
            text = f"{head} (occurrence {count}; others not logged){newline}{rest}"
        return redact(text)


def logs_dir(data_dir: Path) -> Path:
    return data_dir / LOGS_DIR


def prune_logs(directory: Path, now: float | None = None, keep_days: int = KEEP_DAYS) -> list[Path]:
    """Delete log files last written more than ``keep_days`` ago; returns what went.

    Rotation only prunes when it rotates, so this also runs at start-up: an agent that
    was off for a month must not keep month-old logs.
    """
    limit = (time.time() if now is None else now) - keep_days * 86400
    gone = []
    for path in directory.glob(LOG_NAME + "*"):
        if path.is_file() and path.stat().st_mtime < limit:
            path.unlink()
            gone.append(path)
    return gone


class _PrivateRotatingHandler(logging.handlers.TimedRotatingFileHandler):
    """Owner-only log files (the data directory is private, the files are too)."""

    def _open(self) -> TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        """A full disk loses log lines, never with a traceback on the terminal: the agent
        says so itself (``status``, its state line) and logs again once there is room."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return
        super().handleError(record)


def setup_logging(
    data_dir: Path,
    level: int = logging.INFO,
    *,
    logger: logging.Logger | None = None,
    clock: Callable[[], float] | None = None,
) -> logging.Handler:
    """Attach the daily-rotated, redacted file handler to ``logger`` (the root by default).

    Keeps today's file plus 6 rotated ones (7 days) and prunes older files now.
    """
    directory = logs_dir(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    prune_logs(directory, None if clock is None else clock())
    handler = _PrivateRotatingHandler(  # the file appears with its first line (delay)
        directory / LOG_NAME, when="midnight", backupCount=KEEP_DAYS - 1, utc=True, delay=True
    )
    handler.addFilter(RepeatFilter())
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    target = logger or logging.getLogger()
    target.addHandler(handler)
    if target.level == logging.NOTSET or target.level > level:
        target.setLevel(level)
    return handler


class AgentLogging:
    """The CLI's log file: one per process, moved when a command opens another data dir.

    The root logger gets the redacted file at WARNING (libraries' own troubles), the
    agent's loggers log at INFO; nothing goes to the terminal, which commands own.
    """

    _handler: logging.Handler | None = None
    _data_dir: Path | None = None

    @classmethod
    def start(cls, data_dir: Path) -> None:
        if cls._data_dir == data_dir:
            return
        root = logging.getLogger()
        if cls._handler is not None:
            root.removeHandler(cls._handler)
            cls._handler.close()
        cls._handler = setup_logging(data_dir, logging.WARNING, logger=root)
        cls._data_dir = data_dir
        logging.getLogger("phoneagent").setLevel(logging.INFO)


def bundle_logs(data_dir: Path, out: Path) -> tuple[Path, int]:
    """Zip the kept log files (redacted once more) into ``out``; returns it and the line count.

    The bundle is what ``phoneagent logs upload`` sends; it is written only where the
    person asked, owner-only.
    """
    directory = logs_dir(data_dir)
    files = sorted(directory.glob(LOG_NAME + "*")) if directory.is_dir() else []
    lines = 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in files:
            text = redact(path.read_text(encoding="utf-8", errors="replace"))
            lines += text.count("\n")
            bundle.writestr(path.name, text)
    return out, lines
