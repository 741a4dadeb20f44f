"""The one question every upload path must ask first: may this data leave the phone now?

The answer is read from the store on each call (no caching), so withdrawing cloud sync
stops the very next publish (PR-CLOUD, PR-WITHDRAW), and a guest is refused whatever any
configuration file says (PR-GUEST). The uploader reads that state in the same statement
as each chunk of samples (one snapshot) and decides every batch of the chunk on it: a
withdrawal committed before a chunk's read stops all of it, one committed after the read
stops the next chunk (docs/upload.md, "Delivery").
"""

from __future__ import annotations

from dataclasses import dataclass

from phoneagent.privacy.consent import CLOUD_SYNC, cross_border_subject, default_granted
from phoneagent.store import Store
from phoneagent.store.ledger import UploadConsents

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


def upload_subjects(region: str | None = None) -> tuple[str, str]:
    """The two consents an upload to ``region`` (None: home) depends on: cloud sync, and
    crossing into ``region`` (what ``decide_upload`` reads, ``Ledger.upload_consents``)."""
    return CLOUD_SYNC, cross_border_subject("" if region is None else region.lower())


def upload_allowed(store: Store, region: str | None = None) -> Decision:
    """Whether the account's data may be uploaded to ``region``'s endpoint (None: home),
    read from the store now. The uploader reads the same state with each chunk's samples
    (``Store.upload_chunk``) and asks ``decide_upload`` before each batch of it."""
    return decide_upload(store.ledger.upload_consents(*upload_subjects(region)), region)


def decide_upload(consents: UploadConsents | None, region: str | None = None) -> Decision:
    """The gate's rules over what ``upload_subjects(region)`` read: no account or a guest
    never (PR-GUEST), cloud sync must be granted (PR-CLOUD), another region than the home
    one only with its cross-border consent (PR-REGION). Pure: the caller decides how fresh
    ``consents`` must be, and nothing may be published on a refusal."""
    if consents is None or consents.guest:
        return Decision(False, "guest mode: guest data is stored on this phone only")
    home = consents.home
    if not _granted(CLOUD_SYNC, consents.cloud):
        return Decision(False, "cloud sync is off (phoneagent consent grant cloud_sync)")
    target = home if region is None else region.lower()
    if target != home and not _granted(upload_subjects(region)[1], consents.crossing):
        return Decision(
            False,
            f"region {target} is not the home region {home} and there is no cross-border "
            f"consent (phoneagent consent grant cross_border:{target})",
        )
    return Decision(True, f"cloud sync on, region {target}")


def _granted(subject: str, newest: bool | None) -> bool:
    """``is_granted`` on the ledger's newest entry (None: no entry, the default holds)."""
    return default_granted(subject) if newest is None else newest
