"""The one question every upload path must ask first: may this data leave the phone now?

The answer is read from the store on each call (no caching), so withdrawing cloud sync
stops the very next publish (PR-CLOUD, PR-WITHDRAW), and a guest is refused whatever any
configuration file says (PR-GUEST).
"""

from __future__ import annotations

from dataclasses import dataclass

from phoneagent.privacy.consent import CLOUD_SYNC, cross_border_subject, is_granted
from phoneagent.store import Store
from phoneagent.store.ledger import get_account

# ``disclosure_ledger.purpose`` of the automatic transfers; anything else is a share the
# person asked for (PR-SHARE). The uploader records each acknowledged upload under
# CLOUD_UPLOAD_PURPOSE with the endpoint (region key) as recipient.
CLOUD_UPLOAD_PURPOSE = "cloud sync"
LOG_UPLOAD_PURPOSE = "log upload"


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
    account = get_account(store)
    if account is None or account.guest:
        return Decision(False, "guest mode: guest data is stored on this phone only")
    if not is_granted(store, CLOUD_SYNC):
        return Decision(False, "cloud sync is off (phoneagent consent grant cloud_sync)")
    home = account.region
    target = home if region is None else region.lower()
    if target != home and not is_granted(store, cross_border_subject(str(target))):
        return Decision(
            False,
            f"region {target} is not the home region {home} and there is no cross-border "
            f"consent (phoneagent consent grant cross_border:{target})",
        )
    return Decision(True, f"cloud sync on, region {target}")
