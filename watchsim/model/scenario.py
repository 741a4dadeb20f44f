"""Scenarios: what the wearer does (a timeline of activities) and what goes wrong (events).

Scenarios are TOML files so that test authors can script a day without writing Python.
Every loader error names the file and, where it can, the line and the segment or event
index and field, because a scenario is usually edited by hand.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec

from watchsim.errors import WatchsimUsageError
from watchsim.schema import fault

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class Activity(enum.Enum):
    SLEEP = "sleep"
    REST = "rest"
    WALK = "walk"
    RUN = "run"
    WORKOUT = "workout"


class EventKind(enum.Enum):
    OFF_WRIST = "off_wrist"  # sensor loses skin contact for `duration_s`
    CHARGE = "charge"  # on the charger (so off-wrist) for `duration_s`
    BATTERY_LOW = "battery_low"  # battery jumps down to `level` percent
    OUT_OF_RANGE = "out_of_range"  # radio out of range for `duration_s`: the watch app acts
    REBOOT = "reboot"  # the watch app restarts: the model only reports it
    BATTERY_EMPTY = "battery_empty"  # raised by the model itself, never scripted


class Anchor(enum.Enum):
    START = "start"  # offsets count from the model's start time
    LOCAL_MIDNIGHT = "local-midnight"  # offsets count from local midnight of the start day


_NEEDS_DURATION = {EventKind.OFF_WRIST, EventKind.CHARGE, EventKind.OUT_OF_RANGE}
_SCRIPTABLE = [k for k in EventKind if k is not EventKind.BATTERY_EMPTY]


@dataclass(frozen=True, slots=True)
class Segment:
    activity: Activity
    duration_s: int
    cadence: float | None = None  # steps/min; None: the model's default for the activity
    intensity: float | None = None  # fraction of heart-rate reserve; None: activity default


@dataclass(frozen=True, slots=True)
class ScriptedEvent:
    at_s: int  # offset from the scenario's anchor (within each period if it loops)
    kind: EventKind
    duration_s: int = 0
    level: int | None = None  # battery percent, for BATTERY_LOW


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    segments: tuple[Segment, ...]
    events: tuple[ScriptedEvent, ...] = ()
    anchor: Anchor = Anchor.START
    loop: bool = False
    description: str = ""

    @property
    def period_s(self) -> int:
        return sum(s.duration_s for s in self.segments)


class ScenarioError(WatchsimUsageError, ValueError):
    """A scenario file that cannot be used; the message says where and why."""


def parse_duration(value: object) -> int:
    """Seconds from an int or a string such as ``"1h30m"``, ``"45s"`` or ``"2d"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value}")
        return value
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if m and any(m.groups()):
            d, h, mi, s = (int(g) if g else 0 for g in m.groups())
            return ((d * 24 + h) * 60 + mi) * 60 + s
    raise ValueError(f"expected seconds or a duration like '1h30m', got {value!r}")


def _table_line(text: str, table: str, index: int) -> int | None:
    """Line number of the index-th ``[[table]]`` header, when written that way."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().replace(" ", "") == f"[[{table}]]":
            if seen == index:
                return number
            seen += 1
    return None


class _Duration(int):
    """Seconds written as an int or as text such as ``"1h30m"`` (``parse_duration``)."""


def _durations(kind: type, value: Any) -> Any:
    """msgspec's hook for ``_Duration``: a bad one is reported at its key."""
    if kind is _Duration:
        return _Duration(parse_duration(value))
    raise NotImplementedError(kind)


# What an enum-valued key takes, for the message when it takes something else.
_CHOICES = {
    "activity": [a.value for a in Activity],
    "kind": [k.value for k in _SCRIPTABLE],
    "anchor": [a.value for a in Anchor],
}
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


class _SegmentRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    activity: Activity
    duration: _Duration
    cadence: Annotated[float, msgspec.Meta(ge=0, le=250)] | None = None  # steps/min
    intensity: Fraction | None = None  # of heart-rate reserve


class _EventRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    at: _Duration
    kind: EventKind
    duration: _Duration | None = None
    level: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None  # battery percent


class _ScenarioFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The file as written: keys and types checked by msgspec, meaning by ``_Loader``."""

    segment: Annotated[list[_SegmentRow], msgspec.Meta(min_length=1)]
    event: list[_EventRow] = []
    name: str | None = None
    description: str = ""
    anchor: Anchor = Anchor.START
    loop: bool = False


class _Loader:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text

    def fail(self, where: str, message: str) -> ScenarioError:
        """The error at ``where`` (``segment[1].activity``), with the line of its table."""
        row = re.match(r"(segment|event)\[(\d+)\]", where)
        line = _table_line(self.text, row[1], int(row[2])) if row else None
        at = f" (line {line})" if line is not None else ""
        return ScenarioError(f"{self.source}{at}: {where}: {message}")

    def read(self) -> _ScenarioFile:
        try:
            return msgspec.toml.decode(self.text, type=_ScenarioFile, dec_hook=_durations)
        except msgspec.ValidationError as exc:
            where, message = fault(exc)
            message = message.replace(" | null`", "`").replace("`object`", "`table`")
            choices = _CHOICES.get(where.rpartition(".")[2])
            if message.startswith("Invalid enum value") and choices:
                message += f", expected one of {choices}"
            if "field `segment`" in message or (where == "segment" and "length" in message):
                where, message = "segment", "a scenario needs at least one [[segment]]"
            raise self.fail(where or "top level", message) from None
        except msgspec.DecodeError as exc:  # its message carries line and column
            raise ScenarioError(f"{self.source}: {exc}") from None

    def segment(self, row: _SegmentRow, i: int) -> Segment:
        if row.duration == 0:
            raise self.fail(f"segment[{i}].duration", "must be longer than 0 s")
        return Segment(row.activity, row.duration, row.cadence, row.intensity)

    def event(self, row: _EventRow, i: int, period: int, loop: bool) -> ScriptedEvent:
        where, kind = f"event[{i}]", row.kind
        if kind is EventKind.BATTERY_EMPTY:
            valid = [k.value for k in _SCRIPTABLE]
            raise self.fail(f"{where}.kind", f"{kind.value!r} is not one of {valid}")
        if loop and row.at >= period:
            raise self.fail(f"{where}.at", f"{row.at} s is past the looping timeline's {period} s")
        if kind in _NEEDS_DURATION and row.duration is None:
            raise self.fail(where, "missing field 'duration'")
        if kind not in _NEEDS_DURATION and row.duration is not None:
            raise self.fail(f"{where}.duration", f"'{kind.value}' takes no duration")
        level = row.level
        if kind is EventKind.BATTERY_LOW:
            level = 10 if level is None else level
        elif level is not None:
            raise self.fail(f"{where}.level", f"'{kind.value}' takes no level")
        return ScriptedEvent(row.at, kind, row.duration or 0, level)

    def scenario(self, default_name: str) -> Scenario:
        written = self.read()
        segments = tuple(self.segment(r, i) for i, r in enumerate(written.segment))
        period = sum(s.duration_s for s in segments)
        events = (self.event(r, i, period, written.loop) for i, r in enumerate(written.event))
        return Scenario(
            name=default_name if written.name is None else written.name,
            segments=segments,
            events=tuple(sorted(events, key=lambda e: e.at_s)),
            anchor=written.anchor,
            loop=written.loop,
            description=written.description,
        )


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    return _Loader(source, text).scenario(default_name=Path(source).stem)


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc}") from None
    return parse_scenario(text, str(path))


def builtin_names() -> list[str]:
    """Scenarios shipped in ``watchsim/scenarios``."""
    folder = resources.files("watchsim") / "scenarios"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_builtin(name: str) -> Scenario:
    """A shipped scenario by name (``default-day``), or a path to any TOML file."""
    if name.endswith(".toml") or "/" in name:
        return load_scenario(name)
    resource = resources.files("watchsim") / "scenarios" / f"{name}.toml"
    if not resource.is_file():
        raise ScenarioError(f"no built-in scenario {name!r}; available: {builtin_names()}")
    return parse_scenario(resource.read_text(encoding="utf-8"), f"scenarios/{name}.toml")
