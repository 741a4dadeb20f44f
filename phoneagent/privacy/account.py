"""Account and guest mode: creation with an age gate, correction, deletion.

No password and no e-mail are stored: the phone side needs neither, the account is
identified in the cloud by a random pseudonym only (PR-PROFILE, PR-ANON).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from phoneagent.privacy.consent import POLICY, POLICY_VERSION, sends_data_off, set_consent
from phoneagent.privacy.erase import request_cloud_erasure
from phoneagent.privacy.errors import AccountError, UnderAgeError
from phoneagent.privacy.profile import age_on, today_utc
from phoneagent.privacy.regions import region as find_region
from phoneagent.store import Store
from phoneagent.store.ledger import AccountRow, EraseRequest
from protocol.settings import HEIGHT_CM_RANGE, WEIGHT_DECIKG_RANGE, Sex


@dataclass(frozen=True, slots=True)
class ProfileInput:
    """The required account fields (policy section 1); weight in 0.1 kg."""

    region: str
    birth_date: date
    sex: Sex
    height_cm: int
    weight_decikg: int

    def checked(self, today: date) -> ProfileInput:
        """Normalised copy; ValueError for values the watch could not take."""
        key = find_region(self.region).key
        if self.birth_date > today:
            raise ValueError(f"date of birth {self.birth_date} is in the future")
        low, high = HEIGHT_CM_RANGE
        if not low <= self.height_cm <= high:
            raise ValueError(f"height must be {low}..{high} cm, got {self.height_cm}")
        low, high = WEIGHT_DECIKG_RANGE
        if not low <= self.weight_decikg <= high:
            raise ValueError(
                f"weight must be {low / 10}..{high / 10} kg, got {self.weight_decikg / 10}"
            )
        return replace(self, region=key)


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    samples: int
    erase_requests: tuple[EraseRequest, ...]
    reason: str


def _minimum_age_check(profile: ProfileInput, today: date) -> str | None:
    """The refusal message when ``profile`` belongs to a minor, else None."""
    rule = find_region(profile.region)
    age = age_on(profile.birth_date, today)
    if age >= rule.minimum_age:
        return None
    return (
        f"Accounts need a minimum age of {rule.minimum_age} in {rule.name}; the date of birth "
        f"given means age {age}."
    )


def _write(store: Store, profile: ProfileInput, *, new_pseudonym: bool) -> AccountRow:
    return store.ledger.put_account(
        region=profile.region,
        birth_date=profile.birth_date.isoformat(),
        sex=int(profile.sex),
        height_cm=profile.height_cm,
        weight_decikg=profile.weight_decikg,
        new_pseudonym=new_pseudonym,
    )


def guest_identity(store: Store) -> AccountRow:
    """The current identity; a guest with a fresh random install id when there is none."""
    return store.ledger.ensure_guest()


def create_account(store: Store, profile: ProfileInput, today: date | None = None) -> AccountRow:
    """Create the account (accepting the current policy); nothing is written for a minor.

    Guest data on the phone stays and becomes the account's; it is still only uploaded
    once cloud sync is granted.
    """
    today = today or today_utc()
    profile = profile.checked(today)
    refusal = _minimum_age_check(profile, today)
    if refusal is not None:
        raise UnderAgeError(refusal + " No account was created and nothing was stored.")
    existing = store.ledger.get_account()
    if existing is not None and not existing.guest:
        raise AccountError("An account exists already; use phoneagent account update.")
    account = _write(store, profile, new_pseudonym=True)
    set_consent(store, POLICY, True)
    return account


def delete_account(store: Store, reason: str = "deleted by the user") -> AccountDeletion:
    """Remove every local personal record now and record cloud erasure (PR-RETAIN).

    The consents that let data leave the phone keep their history, closed by a
    withdrawal: the disclosure ledger stays, and the audit judges each disclosure by the
    consent in force when it was made (a wiped ledger made every past upload look
    unconsented). The phone is back in guest mode afterwards (a new install id on next use).
    """
    account = store.ledger.get_account()
    if account is None or account.guest:
        raise AccountError("There is no account to delete (guest mode).")
    requests = request_cloud_erasure(store, "account")
    kept = sorted({e.subject for e in store.ledger.consent_history() if sends_data_off(e.subject)})
    samples = store.ledger.wipe_personal_data(
        keep_account=False, keep_consents=kept, policy_version=POLICY_VERSION
    )
    return AccountDeletion(samples, tuple(requests), reason)


def update_account(
    store: Store, profile: ProfileInput, today: date | None = None
) -> AccountRow | AccountDeletion:
    """Correct the profile (PR-CORRECT); the watch gets it on its next sync.

    A correction revealing a minor deletes the account and its data (PR-MINOR) and
    returns the ``AccountDeletion``.
    """
    today = today or today_utc()
    account = store.ledger.get_account()
    if account is None or account.guest:
        raise AccountError("There is no account to update; create one first.")
    profile = profile.checked(today)
    refusal = _minimum_age_check(profile, today)
    if refusal is not None:
        return delete_account(store, refusal + " The account and its data were deleted.")
    return _write(store, profile, new_pseudonym=False)


def profile_input(account: AccountRow) -> ProfileInput:
    """An account's stored fields, as the base for a partial update."""
    if account.guest or account.region is None or account.birth_date is None:
        raise AccountError("A guest has no account profile.")
    assert account.sex is not None and account.height_cm is not None
    assert account.weight_decikg is not None
    return ProfileInput(
        account.region,
        date.fromisoformat(account.birth_date),
        Sex(account.sex),
        account.height_cm,
        account.weight_decikg,
    )
