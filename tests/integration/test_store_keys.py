"""Where the store key comes from, and the data directory it protects."""

from __future__ import annotations

import importlib.util
import stat
from pathlib import Path

import pytest

from phoneagent.paths import data_dir
from phoneagent.store import (
    DbKey,
    KeyFileError,
    NoKeyError,
    Store,
    WrongKeyError,
    create_key_file,
    read_key_file,
    resolve_key,
    store_exists,
)
from phoneagent.store.keys import ENV_VAR

asked: list[tuple[str, bool]] = []


def prompt(message: str, confirm: bool) -> str:
    asked.append((message, confirm))
    return "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_prompts() -> None:
    asked.clear()


def test_key_file_beats_environment_beats_prompt(tmp_path: Path) -> None:
    key_file = tmp_path / "db.key"
    from_file = create_key_file(key_file)
    env = {ENV_VAR: "from the environment"}
    chosen = resolve_key(tmp_path, key_file=key_file, env=env, prompt=prompt, use_keyring=False)
    assert (chosen.key, chosen.source) == (from_file, f"key file {key_file}")
    chosen = resolve_key(tmp_path, env=env, prompt=prompt, use_keyring=False)
    assert (chosen.key.material, chosen.source) == ("from the environment", "environment")
    chosen = resolve_key(tmp_path, env={}, prompt=prompt, use_keyring=False, new_database=True)
    assert chosen.source == "prompt"
    assert asked == [(f"Choose the passphrase for the encrypted store in {tmp_path}", True)]


@pytest.mark.skipif(importlib.util.find_spec("keyring") is not None, reason="keyring installed")
def test_missing_keyring_package_is_skipped(tmp_path: Path) -> None:
    assert resolve_key(tmp_path, env={}, prompt=prompt).source == "prompt"
    assert asked[0][1] is False


def test_no_source_says_how_to_give_a_key(tmp_path: Path) -> None:
    with pytest.raises(NoKeyError, match=f"--key-file, set {ENV_VAR}"):
        resolve_key(tmp_path, env={}, use_keyring=False)
    with pytest.raises(NoKeyError, match="empty"):
        resolve_key(tmp_path, env={}, prompt=lambda _m, _c: "", use_keyring=False)


def test_key_file_is_private_random_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    key = create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.is_raw
    assert read_key_file(path) == key
    assert create_key_file(tmp_path / "other.key") != key
    with pytest.raises(FileExistsError):
        create_key_file(path)
    assert read_key_file(path) == key


def test_key_file_readable_by_others_or_empty_or_missing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    create_key_file(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match=f"chmod 600 {path}"):
        read_key_file(path)
    empty = tmp_path / "empty.key"
    empty.touch(mode=0o600)
    with pytest.raises(KeyFileError, match="empty"):
        read_key_file(empty)
    with pytest.raises(KeyFileError, match="Cannot read"):
        read_key_file(tmp_path / "missing.key")


def test_key_material_never_shows_in_repr() -> None:
    key = DbKey("hunter2-secret")
    assert "hunter2" not in repr(key)
    assert not key.is_raw
    assert DbKey("AB" * 32).is_raw
    assert not DbKey("AB" * 31).is_raw


def test_passphrase_with_quotes_opens_and_reopens(tmp_path: Path) -> None:
    passphrase = DbKey("it's a \"quoted\" pass'; DROP TABLE x; --")
    assert not store_exists(tmp_path)
    with Store.open(tmp_path, passphrase) as store:
        store.set_setting("k", "v")
    assert store_exists(tmp_path)
    with Store.open(tmp_path, passphrase) as store:
        assert store.get_setting("k") == "v"
    with pytest.raises(WrongKeyError):
        Store.open(tmp_path, DbKey("it's a"))


def test_data_dir_follows_xdg_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert data_dir() == tmp_path / "phoneagent"
    assert data_dir(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")
    assert data_dir() == Path.home() / ".local" / "share" / "phoneagent"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert data_dir() == Path.home() / ".local" / "share" / "phoneagent"
