"""The watch's wearer: one sex enum with the wire, and the settings file's form kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.settings import Sex, UserProfile
from watchsim.app.settings_service import (
    SETTINGS_FILE,
    SettingsStore,
    profile_from_wire,
    profile_to_wire,
)
from watchsim.model import Activity, Scenario, Segment, WatchModel, Wearer

# What every watch so far has written: sex as a lower-case word.
OLD_FILE = {
    "user": {"age": 41, "sex": "male", "height_cm": 182.0, "weight_kg": 80.5, "resting_hr": 58.0}
}


def model() -> WatchModel:
    return WatchModel(Scenario("s", (Segment(Activity.REST, 60),)), seed=1, start=0)


def test_a_settings_file_of_an_older_watch_loads_and_is_saved_in_the_same_form(
    tmp_path: Path,
) -> None:
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(OLD_FILE), encoding="utf-8")
    watch = model()
    store = SettingsStore(tmp_path)
    store.load_into(watch)
    assert watch.user == Wearer(41, Sex.MALE, 182.0, 80.5, 58.0)
    store.save(watch)
    saved = json.loads((tmp_path / SETTINGS_FILE).read_text(encoding="utf-8"))
    assert saved["user"] == OLD_FILE["user"]


def test_the_wire_profile_and_the_wearer_share_the_sex_and_unspecified_keeps_it() -> None:
    wearer = Wearer(52, Sex.MALE, 181.0, 87.3, 60.0)
    assert profile_to_wire(wearer) == UserProfile(52, Sex.MALE, 181, 873)
    unspecified = UserProfile(30, Sex.UNSPECIFIED, 170, 650)
    assert profile_from_wire(unspecified, wearer).sex is Sex.MALE
    with pytest.raises(ValueError, match="unspecified"):
        Wearer(sex=Sex.UNSPECIFIED)
