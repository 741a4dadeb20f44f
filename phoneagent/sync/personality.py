"""Which firmware a watch runs, told from the GATT services it presents, and what that
means for the agent: whether it keeps a history to sync (ours) or only live values
(InfiniTime, whose records the agent makes per minute), and whether a bond is required
before anything is read (ours) or only when the watch asks for one (InfiniTime).

The store keeps the personality a watch had when paired (``DeviceRecord.personality``);
the daemon picks each watch's engine by it (``phoneagent.sync.engines``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from phoneagent.sync.watch_client import WatchProtocolError
from protocol import infinitime, uuids


class Personality(enum.StrEnum):
    WATCHSIM = "watchsim"
    INFINITIME = "infinitime"

    @property
    def live_derived(self) -> bool:
        """No history on the watch: its records are made from live values."""
        return self is Personality.INFINITIME

    @property
    def needs_bond(self) -> bool:
        """Our profile encrypts every record; InfiniTime needs no encryption (a bond is
        made only when the watch asks for one)."""
        return self is Personality.WATCHSIM


def detect(service_uuids: Iterable[str]) -> Personality:
    """The personality of a watch presenting these services; ``WatchProtocolError`` for
    a device that presents neither profile."""
    present = {u.lower() for u in service_uuids}
    if uuids.HISTORY_SERVICE in present:
        return Personality.WATCHSIM
    if {infinitime.MOTION_SERVICE, infinitime.ALERT_NOTIFICATION_SERVICE} <= present:
        return Personality.INFINITIME
    raise WatchProtocolError(
        "it presents neither our watch's services (History Sync) nor InfiniTime's"
        " (Motion, Alert Notification): not a watch this agent can sync"
    )


def advertises_infinitime(local_name: str | None) -> bool:
    """InfiniTime is found by its name, as its companions find it."""
    return local_name == infinitime.NAME
