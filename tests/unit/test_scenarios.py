"""Scenario files: the shipped ones load, and mistakes are reported with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchsim.model import (
    Activity,
    Anchor,
    EventKind,
    ScenarioError,
    builtin_names,
    load_builtin,
    load_scenario,
    parse_duration,
    parse_scenario,
)


def test_shipped_scenarios_load() -> None:
    names = builtin_names()
    assert {"default-day", "workout", "sleep-lab", "faults"} <= set(names)
    for name in names:
        assert load_builtin(name).segments
    day = load_builtin("default-day")
    assert day.period_s == 86400 and day.loop and day.anchor is Anchor.LOCAL_MIDNIGHT
    faults = load_builtin("faults")
    kinds = {e.kind for e in faults.events}
    assert kinds == {
        EventKind.OFF_WRIST,
        EventKind.OUT_OF_RANGE,
        EventKind.BATTERY_LOW,
        EventKind.REBOOT,
    }


def test_loads_a_file_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[[segment]]\nactivity = "run"\nduration = 90\ncadence = 170\n')
    scenario = load_scenario(path)
    assert scenario.name == "mine"
    assert (scenario.segments[0].activity, scenario.segments[0].duration_s) == (Activity.RUN, 90)
    assert load_builtin(str(path)) == scenario


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[segment]]\nactivity = "run"\nduration = \n', r"x\.toml: .*line 3"),
        (
            '[[segment]]\nactivity = "rest"\nduration = "1h"\n\n[[segment]]\nactivity = "swim"\n'
            'duration = "1h"\n',
            r"x\.toml \(line 5\): segment\[1\]\.activity: Invalid enum value 'swim', expected "
            r"one of \['sleep', 'rest'",
        ),
        (
            '[[segment]]\nactivity = "walk"\n',
            r"\(line 1\): segment\[0\]: Object missing required field `duration`",
        ),
        (
            '[[segment]]\nactivity = "walk"\nduration = "ten minutes"\n',
            r"segment\[0\]\.duration: expected seconds or a duration",
        ),
        (
            '[[segment]]\nactivity = "walk"\nduration = "1h"\nspeed = 3\n',
            r"segment\[0\]: Object contains unknown field `speed`",
        ),
        (
            'loop = true\n[[segment]]\nactivity = "rest"\nduration = "1h"\n'
            '[[event]]\nat = "2h"\nkind = "reboot"\n',
            r"\(line 5\): event\[0\]\.at: 7200 s is past",
        ),
        (
            '[[segment]]\nactivity = "rest"\nduration = "1h"\n[[event]]\nat = "1m"\n'
            'kind = "battery_low"\nlevel = 120\n',
            r"\(line 4\): event\[0\]\.level: Expected `int` <= 100",
        ),
        (
            '[[segment]]\nactivity = "rest"\nduration = "1h"\n[[event]]\nat = "1m"\n'
            'kind = "off_wrist"\n',
            r"event\[0\]: missing field 'duration'",
        ),
        ('name = "empty"\n', r"segment: a scenario needs at least one"),
        (
            'anchor = "noon"\n[[segment]]\nactivity = "rest"\nduration = 5\n',
            r"anchor: Invalid enum value 'noon', expected one of \['start', 'local-midnight'\]",
        ),
    ],
)
def test_errors_name_the_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError, match=expected):
        parse_scenario(text, "x.toml")


def test_unknown_builtin_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"available: .*default-day"):
        load_builtin("nope")
    with pytest.raises(ScenarioError, match=r"missing\.toml: cannot read"):
        load_scenario(tmp_path / "missing.toml")


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172800
    assert parse_duration("45s") == 45
    assert parse_duration(12) == 12
    for bad in ("", "h", "1x", -1, True, 1.5):
        with pytest.raises(ValueError):
            parse_duration(bad)
