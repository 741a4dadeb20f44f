"""The watch's default state dirs follow XDG_STATE_HOME, as README.md documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchsim.cli.run import default_state_dir


def test_state_dir_follows_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir("W1") == tmp_path / "watchsim" / "W1"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir("fleet") == Path.home() / ".local" / "state" / "watchsim" / "fleet"
