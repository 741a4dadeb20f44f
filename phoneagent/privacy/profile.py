"""The body profile the watch algorithms need, derived from the account (PR-PROFILE).

Only age, sex, height and weight go to the watch: the date of birth stays on the phone
and the age is recomputed from it, so it is right after a birthday too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from phoneagent.store import Store
from phoneagent.store.ledger import AccountRow
from protocol.settings import Sex, UserProfile


def today_utc() -> date:
    return datetime.now(UTC).date()


def age_on(birth: date, today: date) -> int:
    """Completed years: the birthday counts from its own day (29 February from 1 March)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def profile_of(account: AccountRow, today: date) -> UserProfile | None:
    """The watch's view of ``account``; None when a field is missing (a guest without one)."""
    if (
        account.birth_date is None
        or account.sex is None
        or account.height_cm is None
        or account.weight_decikg is None
    ):
        return None
    age = age_on(date.fromisoformat(account.birth_date), today)
    return UserProfile(age, Sex(account.sex), account.height_cm, account.weight_decikg)


def current_user_profile(store: Store, today: date | None = None) -> UserProfile | None:
    """What the sync engine writes to the watch on its next session (PR-CORRECT)."""
    account = store.ledger.get_account()
    if account is None:
        return None
    return profile_of(account, today or today_utc())
