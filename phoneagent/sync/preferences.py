"""What the user chose for their watches: the body profile the algorithms need and the
metrics they opted out of.

The truth lives in the account and the consent ledger (``phoneagent.privacy``); the
sync engine asks a ``PreferencesSource`` at the start of every session, so a correction
or a withdrawal reaches the watch on the next connection without a second copy to
keep in step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.metrics import Metric
from protocol.settings import MetricSettings, UserProfile


@dataclass(frozen=True, slots=True)
class SyncPreferences:
    profile: UserProfile | None = None
    opted_out: frozenset[Metric] = field(default_factory=frozenset)

    def wanted_settings(self, current: MetricSettings) -> MetricSettings:
        """The watch's table with consent applied: opted-out metrics off, the rest on.

        Intervals stay the watch's own: consent decides whether, not how often.
        """
        wanted = current
        for row in current.rows:
            wanted = wanted.with_setting(
                row.metric, enabled=row.metric not in self.opted_out, interval_s=row.interval_s
            )
        return wanted


PreferencesSource = Callable[[], SyncPreferences]


def fixed_preferences(preferences: SyncPreferences) -> PreferencesSource:
    """A source that never changes (tests, the demo)."""
    return lambda: preferences
