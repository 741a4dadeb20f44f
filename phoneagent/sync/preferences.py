"""What the user chose for a watch: the body profile the algorithms need, per-metric consent.

Both are personal data, so they live in the encrypted store's settings table, never in
the plaintext configuration file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from protocol.metrics import Metric
from protocol.settings import MetricSettings, Sex, UserProfile

PROFILE_KEY = "sync.profile"
OPTED_OUT_KEY = "sync.opted_out"


class SettingsSource(Protocol):
    def get_setting(self, key: str) -> str | None: ...

    def set_setting(self, key: str, value: str) -> None: ...


class PreferencesError(ValueError):
    """A stored preference that does not parse (written by something else, or damaged)."""


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

    @classmethod
    def load(cls, settings: SettingsSource) -> SyncPreferences:
        try:
            profile_text = settings.get_setting(PROFILE_KEY)
            profile = None if profile_text is None else _profile(json.loads(profile_text))
            opted_text = settings.get_setting(OPTED_OUT_KEY)
            names = [] if opted_text is None else json.loads(opted_text)
            opted_out = frozenset(Metric[str(name).upper()] for name in names)
        except (ValueError, KeyError, TypeError) as error:
            raise PreferencesError(f"stored sync preferences are damaged: {error}") from error
        return cls(profile, opted_out)

    def save(self, settings: SettingsSource) -> None:
        if self.profile is not None:
            p = self.profile
            settings.set_setting(
                PROFILE_KEY,
                json.dumps(
                    {
                        "age_years": p.age_years,
                        "sex": p.sex.name.lower(),
                        "height_cm": p.height_cm,
                        "weight_decikg": p.weight_decikg,
                    }
                ),
            )
        settings.set_setting(OPTED_OUT_KEY, json.dumps(sorted(m.key for m in self.opted_out)))


def _profile(data: Any) -> UserProfile:
    profile = UserProfile(
        int(data["age_years"]),
        Sex[str(data["sex"]).upper()],
        int(data["height_cm"]),
        int(data["weight_decikg"]),
    )
    profile.encode()  # range check: a profile the watch would refuse is damaged data
    return profile
