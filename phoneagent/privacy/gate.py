"""The one question every upload path must ask first: may this data leave the phone now?

The answer is read from the store on each call (no caching), so withdrawing cloud sync
stops the very next publish (PR-CLOUD, PR-WITHDRAW), and a guest is refused whatever any
configuration file says (PR-GUEST).
"""

from __future__ import annotations

from dataclasses import dataclass

from phoneagent.privacy.consent import CLOUD_SYNC, cross_border_subject, default_granted
from phoneagent.store import Store

# ``disclosure_ledger.purpose`` of the automatic transfers; anything else is a share the
# person asked for (PR-SHARE). The uploader records each acknowledged upload under
# CLOUD_UPLOAD_PURPOSE, to ``cloud_recipient(region)``, with CLOUD_CATEGORIES.
CLOUD_UPLOAD_PURPOSE = "cloud sync"
LOG_UPLOAD_PURPOSE = "log upload"
CLOUD_CATEGORIES = ("samples", "device_info")
_CLOUD_PREFIX = "cloud:"


def cloud_recipient(region: str) -> str:
    return _CLOUD_PREFIX + region


def recipient_region(recipient: str) -> str:
    """The region key of a ``cloud_recipient`` (older entries name the bare region)."""
    return recipient.removeprefix(_CLOUD_PREFIX)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def upload_allowed(store: Store, region: str | None = None) -> Decision:
    """Whether the account's data may be uploaded to ``region``'s endpoint (None: home).

    The uploader MUST call this before every batch and publish nothing on a refusal.
    """
    target = None if region is None else region.lower()
    cross_border = cross_border_subject("" if target is None else target)
    consents = store.ledger.upload_consents(CLOUD_SYNC, cross_border)
    if consents is None or consents.guest:
        return Decision(False, "guest mode: guest data is stored on this phone only")
    home = consents.home
    if not _granted(CLOUD_SYNC, consents.cloud):
        return Decision(False, "cloud sync is off (phoneagent consent grant cloud_sync)")
    target = home if target is None else target
    if target != home and not _granted(cross_border, consents.crossing):
        return Decision(
            False,
            f"region {target} is not the home region {home} and there is no cross-border "
            f"consent (phoneagent consent grant cross_border:{target})",
        )
    return Decision(True, f"cloud sync on, region {target}")


def _granted(subject: str, newest: bool | None) -> bool:
    """``is_granted`` on the ledger's newest entry (None: no entry, the default holds)."""
    return default_granted(subject) if newest is None else newest
