"""Each watch's engine, by the personality it was paired with: ``DeviceSync`` syncs our
watch's history, ``InfiniTimeSync`` stores an InfiniTime watch's live values per minute."""

from __future__ import annotations

from typing import Final

from phoneagent.store import DeviceRecord
from phoneagent.sync.engine import DeviceSync
from phoneagent.sync.infinitime import InfiniTimeSync
from phoneagent.sync.personality import Personality

ENGINES: Final[dict[Personality, type[DeviceSync]]] = {
    Personality.WATCHSIM: DeviceSync,
    Personality.INFINITIME: InfiniTimeSync,
}


def engine_for(device: DeviceRecord | None) -> type[DeviceSync]:
    """A device not (yet) recorded is taken for ours, as before personalities."""
    return ENGINES[Personality(device.personality)] if device is not None else DeviceSync
