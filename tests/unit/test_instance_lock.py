"""One data dir, one agent: a refused process names the holder, also when it asks in the
moment between the holder's lock and the holder's writing its name."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

import pytest

from phoneagent import instance
from phoneagent.instance import LOCK_NAME, HeldError, holding


def test_a_holder_that_names_itself_a_moment_late_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "agent"
    data_dir.mkdir(mode=0o700)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, not named yet
    asked = threading.Event()
    words = {"pid": 4242, "command": "phoneagent sync F0:00:00:00:00:01", "since": "now"}

    def name_itself_once_asked() -> None:
        asked.wait()
        os.pwrite(fd, json.dumps(words).encode(), 0)

    read = instance._read

    def reading(fd: int) -> instance.Holder | None:
        holder = read(fd)
        asked.set()  # the refused process looked: now the holder writes its name
        return holder

    monkeypatch.setattr(instance, "_read", reading)
    namer = threading.Thread(target=name_itself_once_asked)
    namer.start()
    try:
        with pytest.raises(HeldError) as refused, holding(data_dir, "phoneagent sync"):
            pass
    finally:
        asked.set()
        namer.join()
        os.close(fd)
    assert refused.value.holder is not None and refused.value.holder.pid == 4242
    assert "in use by pid 4242 (`phoneagent sync F0:00:00:00:00:01`" in str(refused.value)
