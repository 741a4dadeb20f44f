"""Who may reach the watch: the relay features, per-app rules, quiet hours, call privacy.

Everything here is derived from the consent ledger, so that every change carries its
time and policy version (PR-WITHDRAW, PR-VERSION) and nothing else holds the state:

- ``(feature, "")``: the feature itself (``notifications``, ``calls``, ``music``), off
  until granted;
- ``("notifications", APP_ID)``: an allow (granted) or deny (withdrawn) rule for one app;
- ``(feature, "@key=value")``: a setting of the feature, recorded as granted. ``@`` never
  starts an app id we accept, so the two never collide. Settings: ``@apps=allow-list``
  or ``deny-list`` (which apps pass without a rule of their own), ``@quiet=HH:MM-HH:MM``
  or ``off`` (notifications), ``@privacy=name`` or ``hidden`` (calls).

The app ids named in rules stay in the local encrypted store (PR-APPLIST).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Final

from phoneagent.privacy.consent import CALLS, MUSIC, NOTIFICATIONS, set_consent
from phoneagent.store import Store
from phoneagent.store.ledger import ConsentEntry

SETTING_PREFIX: Final = "@"
_APP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_DIALLING = frozenset("0123456789+-(). /")


class RelayPermissionError(ValueError):
    """A permission request that does not make sense; the message says why."""


class Feature(enum.StrEnum):
    NOTIFICATIONS = NOTIFICATIONS
    CALLS = CALLS
    MUSIC = MUSIC


class AppMode(enum.StrEnum):
    """DENY_LIST: every app passes unless denied. ALLOW_LIST: only apps granted by name."""

    DENY_LIST = "deny-list"
    ALLOW_LIST = "allow-list"


class CallPrivacy(enum.StrEnum):
    NAME = "name"  # the caller's display name, never a number
    HIDDEN = "hidden"  # no caller at all: the watch shows "hidden caller"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No notification reaches the watch between ``start`` and ``end`` (may span midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        parts = text.split("-")
        matches = [_CLOCK.fullmatch(p.strip()) for p in parts]
        if len(parts) != 2 or not all(matches):
            raise RelayPermissionError(f"quiet hours must look like 22:00-07:00, got {text!r}")
        start, end = (time(int(m[1]), int(m[2])) for m in matches if m)
        if start == end:
            raise RelayPermissionError("quiet hours need a start and an end that differ")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    """One snapshot of the ledger's relay decisions; the hub swaps it on every change."""

    granted: frozenset[Feature] = frozenset()
    app_mode: AppMode = AppMode.DENY_LIST
    app_rules: Mapping[str, bool] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None
    call_privacy: CallPrivacy = CallPrivacy.NAME

    def allows(self, feature: Feature) -> bool:
        return feature in self.granted

    def app_allowed(self, app: str) -> bool:
        rule = self.app_rules.get(app)
        if rule is not None:
            return rule
        return self.app_mode is AppMode.DENY_LIST

    def notification_verdict(self, app: str, at: datetime) -> str | None:
        """None when a notification of ``app`` may go to the watch now, else the reason."""
        if not self.allows(Feature.NOTIFICATIONS):
            return "notifications not granted"
        if not self.app_allowed(app):
            return "app not allowed"
        if self.quiet_hours is not None and self.quiet_hours.contains(at.time()):
            return "quiet hours"
        return None

    def caller_display(self, name: str | None) -> str:
        """What the watch may show of a caller: a name, or '' (hidden). Never a number."""
        if self.call_privacy is CallPrivacy.HIDDEN or not name:
            return ""
        name = name.strip()
        if set(name) <= _DIALLING and any(c.isdigit() for c in name):
            return ""  # a number is not a name: the caller stays hidden
        return name


def check_app_id(app: str) -> str:
    if not _APP_ID.fullmatch(app):
        raise RelayPermissionError(
            f"app id {app!r} must be 1-128 letters, digits or . _ + - (not starting with one)"
        )
    return app


def _setting(key: str, value: str) -> str:
    return f"{SETTING_PREFIX}{key}={value}"


def load_policy(store: Store) -> RelayPolicy:
    """Replay the ledger: the newest entry per feature, app and setting wins."""
    granted: set[Feature] = set()
    rules: dict[str, bool] = {}
    settings: dict[tuple[str, str], str] = {}
    features = {f.value: f for f in Feature}
    for entry in store.ledger.consent_history():
        feature = features.get(entry.subject)
        if feature is None:
            continue
        if not entry.scope:
            if entry.granted:
                granted.add(feature)
            else:
                granted.discard(feature)
        elif entry.scope.startswith(SETTING_PREFIX):
            key, _, value = entry.scope[1:].partition("=")
            settings[(feature, key)] = value
        elif feature is Feature.NOTIFICATIONS:
            rules[entry.scope] = entry.granted
    quiet = settings.get((Feature.NOTIFICATIONS, "quiet"), "off")
    return RelayPolicy(
        granted=frozenset(granted),
        app_mode=AppMode(settings.get((Feature.NOTIFICATIONS, "apps"), AppMode.DENY_LIST)),
        app_rules=rules,
        quiet_hours=None if quiet == "off" else QuietHours.parse(quiet),
        call_privacy=CallPrivacy(settings.get((Feature.CALLS, "privacy"), CallPrivacy.NAME)),
    )


def set_permission(
    store: Store, feature: Feature, granted: bool, app: str | None = None
) -> ConsentEntry:
    """Grant or revoke a feature, or (notifications only) one app; ledgered with the policy."""
    if app is None:
        return set_consent(store, feature.value, granted)
    if feature is not Feature.NOTIFICATIONS:
        raise RelayPermissionError(f"--app applies to notifications only, not {feature}")
    return set_consent(store, feature.value, granted, check_app_id(app))


def set_app_mode(store: Store, mode: AppMode) -> ConsentEntry:
    return set_consent(store, NOTIFICATIONS, True, _setting("apps", mode.value))


def set_quiet_hours(store: Store, hours: QuietHours | None) -> ConsentEntry:
    value = "off" if hours is None else str(hours)
    return set_consent(store, NOTIFICATIONS, True, _setting("quiet", value))


def set_call_privacy(store: Store, privacy: CallPrivacy) -> ConsentEntry:
    return set_consent(store, CALLS, True, _setting("privacy", privacy.value))
