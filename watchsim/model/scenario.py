"""Scenarios: what the wearer does (a timeline of activities) and what goes wrong (events).

Scenarios are TOML files so that test authors can script a day without writing Python.
Every loader error names the file and, where it can, the line and the segment or event
index and field, because a scenario is usually edited by hand.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from watchsim.errors import WatchsimUsageError

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


class _Loader:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text

    def fail(self, where: str, message: str, table: str = "", index: int = -1) -> ScenarioError:
        line = _table_line(self.text, table, index) if table else None
        at = f" (line {line})" if line is not None else ""
        return ScenarioError(f"{self.source}{at}: {where}: {message}")

    def check_keys(
        self, row: Mapping[str, object], allowed: set[str], where: str, table: str, i: int
    ) -> None:
        unknown = sorted(set(row) - allowed)
        if unknown:
            raise self.fail(
                where, f"unknown field(s) {unknown}; allowed: {sorted(allowed)}", table, i
            )

    def _bad(
        self, row: Mapping[str, object], key: str, where: str, table: str, i: int, expected: str
    ) -> ScenarioError:
        return self.fail(f"{where}.{key}", f"expected {expected}, got {row[key]!r}", table, i)

    def number(
        self, row: Mapping[str, object], key: str, where: str, table: str, i: int
    ) -> float | None:
        value = row.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(row, key, where, table, i, "a number")
        return float(value)

    def integer(
        self, row: Mapping[str, object], key: str, where: str, table: str, i: int
    ) -> int | None:
        value = row.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(row, key, where, table, i, "an integer")
        return value

    def duration(self, row: Mapping[str, object], key: str, where: str, table: str, i: int) -> int:
        if key not in row:
            raise self.fail(where, f"missing field '{key}'", table, i)
        try:
            return parse_duration(row[key])
        except ValueError as exc:
            raise self.fail(f"{where}.{key}", str(exc), table, i) from None

    def segment(self, row: object, i: int) -> Segment:
        where = f"segment[{i}]"
        if not isinstance(row, dict):
            raise self.fail(where, "expected a table")
        self.check_keys(row, {"activity", "duration", "cadence", "intensity"}, where, "segment", i)
        name = row.get("activity")
        try:
            activity = Activity(name)
        except ValueError:
            valid = [a.value for a in Activity]
            raise self.fail(
                f"{where}.activity", f"{name!r} is not one of {valid}", "segment", i
            ) from None
        duration = self.duration(row, "duration", where, "segment", i)
        if duration == 0:
            raise self.fail(f"{where}.duration", "must be longer than 0 s", "segment", i)
        cadence = self.number(row, "cadence", where, "segment", i)
        if cadence is not None and not 0 <= cadence <= 250:
            raise self.fail(f"{where}.cadence", "must be 0..250 steps/min", "segment", i)
        intensity = self.number(row, "intensity", where, "segment", i)
        if intensity is not None and not 0 <= intensity <= 1:
            raise self.fail(f"{where}.intensity", "must be 0..1 (heart-rate reserve)", "segment", i)
        return Segment(activity, duration, cadence, intensity)

    def event(self, row: object, i: int, period: int, loop: bool) -> ScriptedEvent:
        where = f"event[{i}]"
        if not isinstance(row, dict):
            raise self.fail(where, "expected a table")
        self.check_keys(row, {"at", "kind", "duration", "level"}, where, "event", i)
        try:
            kind = EventKind(row.get("kind"))
            if kind is EventKind.BATTERY_EMPTY:
                raise ValueError
        except ValueError:
            valid = [k.value for k in _SCRIPTABLE]
            raise self.fail(
                f"{where}.kind", f"{row.get('kind')!r} is not one of {valid}", "event", i
            ) from None
        at = self.duration(row, "at", where, "event", i)
        if loop and at >= period:
            raise self.fail(
                f"{where}.at", f"{at} s is past the looping timeline's {period} s", "event", i
            )
        duration = 0
        if kind in _NEEDS_DURATION:
            duration = self.duration(row, "duration", where, "event", i)
        elif "duration" in row:
            raise self.fail(f"{where}.duration", f"'{kind.value}' takes no duration", "event", i)
        level = self.integer(row, "level", where, "event", i)
        if kind is EventKind.BATTERY_LOW:
            level = 10 if level is None else level
            if not 0 <= level <= 100:
                raise self.fail(f"{where}.level", "must be 0..100 percent", "event", i)
        elif level is not None:
            raise self.fail(f"{where}.level", f"'{kind.value}' takes no level", "event", i)
        return ScriptedEvent(at, kind, duration, level)

    def scenario(self, default_name: str) -> Scenario:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:  # its message carries line and column
            raise ScenarioError(f"{self.source}: {exc}") from None
        allowed = {"name", "description", "anchor", "loop", "segment", "event"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.fail("top level", f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        rows = data.get("segment")
        if not isinstance(rows, list) or not rows:
            raise self.fail("segment", "a scenario needs at least one [[segment]]")
        segments = tuple(self.segment(r, i) for i, r in enumerate(rows))
        try:
            anchor = Anchor(data.get("anchor", Anchor.START.value))
        except ValueError:
            valid = [a.value for a in Anchor]
            raise self.fail("anchor", f"{data.get('anchor')!r} is not one of {valid}") from None
        loop = data.get("loop", False)
        if not isinstance(loop, bool):
            raise self.fail("loop", f"expected true or false, got {loop!r}")
        period = sum(s.duration_s for s in segments)
        events_rows = data.get("event", [])
        if not isinstance(events_rows, list):
            raise self.fail("event", "expected an array of [[event]] tables")
        events = tuple(self.event(r, i, period, loop) for i, r in enumerate(events_rows))
        name, description = data.get("name", default_name), data.get("description", "")
        if not isinstance(name, str) or not isinstance(description, str):
            raise self.fail("name/description", "expected strings")
        return Scenario(
            name=name,
            segments=segments,
            events=tuple(sorted(events, key=lambda e: e.at_s)),
            anchor=anchor,
            loop=loop,
            description=description,
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
