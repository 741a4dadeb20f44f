"""Consents, their defaults, and the copy of them the sync engine reads.

Subjects (``phoneagent consent grant SUBJECT``):

- ``metric:<steps|heart_rate|spo2|skin_temperature>``: collection of that metric.
  Default granted (policy section 1 is opt-out: "not collected if you opt out"); the data
  stays local and encrypted unless cloud sync is on.
- ``cloud_sync``: upload to the home region's cloud. Default off (PR-CLOUD); accounts only.
- ``cross_border:<region>``: upload to a region other than home. Default off (PR-REGION).
- ``log_upload``: ``phoneagent logs upload`` may send logs. Default off (PR-LOGS).
- ``notifications`` (scope: an app id), ``calls``, ``music``: relay permissions, default off.
- ``policy``: the person accepted the privacy policy of the version recorded.

Every change is appended to the consent ledger with the current ``POLICY_VERSION`` and
takes effect at once: readers consult the ledger on every decision.
"""

from __future__ import annotations

from phoneagent.privacy.errors import AccountError, UnknownSubjectError
from phoneagent.privacy.profile import current_user_profile
from phoneagent.privacy.regions import REGIONS
from phoneagent.store import Store
from phoneagent.store.ledger import ConsentEntry
from phoneagent.sync.preferences import SyncPreferences
from protocol.metrics import Metric

# The effective date of shared/seed/privacy-policy.txt; bump it when the text changes.
POLICY_VERSION = "2023-08-15"

METRIC_PREFIX = "metric:"
CROSS_BORDER_PREFIX = "cross_border:"
CLOUD_SYNC = "cloud_sync"
LOG_UPLOAD = "log_upload"
NOTIFICATIONS = "notifications"
CALLS = "calls"
MUSIC = "music"
POLICY = "policy"
_PLAIN_SUBJECTS = (CLOUD_SYNC, LOG_UPLOAD, NOTIFICATIONS, CALLS, MUSIC, POLICY)
# Subjects that send data off the phone: a guest can never hold them (PR-GUEST).
_ACCOUNT_ONLY = (CLOUD_SYNC, LOG_UPLOAD)


def metric_subject(metric: Metric) -> str:
    return METRIC_PREFIX + metric.key


def cross_border_subject(region_key: str) -> str:
    return CROSS_BORDER_PREFIX + region_key


def known_subjects() -> list[str]:
    return [
        *(metric_subject(m) for m in Metric),
        *_PLAIN_SUBJECTS,
        *(cross_border_subject(r) for r in REGIONS),
    ]


def parse_subject(text: str) -> str:
    subject = text.strip().lower()
    if subject not in known_subjects():
        raise UnknownSubjectError(
            f"unknown consent subject {text!r}; known: {', '.join(known_subjects())}"
        )
    return subject


def default_granted(subject: str) -> bool:
    """The state before any ledger entry: only local metric collection is on."""
    return subject.startswith(METRIC_PREFIX)


def is_granted(store: Store, subject: str, scope: str = "") -> bool:
    entry = store.ledger.latest_consents().get((subject, scope))
    return default_granted(subject) if entry is None else entry.granted


def collection_allowed(store: Store) -> set[Metric]:
    """The metrics the watch may measure and the agent may store (PR-OPTOUT)."""
    current = store.ledger.latest_consents()
    allowed = set()
    for metric in Metric:
        entry = current.get((metric_subject(metric), ""))
        if entry is None or entry.granted:
            allowed.add(metric)
    return allowed


def sync_preferences(store: Store) -> SyncPreferences:
    """Profile and opted-out metrics as the sync engine takes them, from account and ledger."""
    opted_out = frozenset(Metric) - collection_allowed(store)
    return SyncPreferences(current_user_profile(store), opted_out)


def sends_data_off(subject: str) -> bool:
    """A consent that lets data leave the phone: accounts only, and its history outlives
    the account (the disclosures it allowed are judged by it)."""
    return subject in _ACCOUNT_ONLY or subject.startswith(CROSS_BORDER_PREFIX)


def set_consent(store: Store, subject: str, granted: bool, scope: str = "") -> ConsentEntry:
    """Record a grant or withdrawal under the current policy version; effective at once."""
    subject = parse_subject(subject)
    if granted and sends_data_off(subject):
        account = store.ledger.get_account()
        if account is None or account.guest:
            raise AccountError(
                f"{subject} sends data off this phone, which guest mode never does; "
                "create an account first (phoneagent account create)."
            )
    return store.ledger.append_consent(subject, scope, granted, POLICY_VERSION)


def accepted_policy_version(store: Store) -> str | None:
    entry = store.ledger.latest_consents().get((POLICY, ""))
    return entry.policy_version if entry is not None and entry.granted else None


def policy_notice(store: Store) -> str | None:
    """The message to show when the accepted policy is not the current one (PR-VERSION)."""
    accepted = accepted_policy_version(store)
    if accepted == POLICY_VERSION:
        return None
    if accepted is None:
        return (
            f"You have not accepted the privacy policy (version {POLICY_VERSION}). Read it, "
            "then run: phoneagent consent grant policy"
        )
    return (
        f"The privacy policy changed: you accepted version {accepted}, the current one is "
        f"{POLICY_VERSION}. Read it, then run: phoneagent consent grant policy"
    )
