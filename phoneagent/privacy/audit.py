"""``phoneagent privacy audit``: each POLICY.md requirement checked against a live data dir.

Every check looks at what is actually stored (tables, ledgers, files), not at code
paths; requirements that only running code can show (the BLE link, TLS, relays) report
what the data directory can tell about them, or "n/a" with the reason.
"""

from __future__ import annotations

import re
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from phoneagent.logs import KEEP_DAYS, LOG_NAME, logs_dir, redact
from phoneagent.paths import DATABASE_NAME, database_path
from phoneagent.privacy.consent import (
    CLOUD_SYNC,
    CROSS_BORDER_PREFIX,
    POLICY,
    POLICY_VERSION,
    cross_border_subject,
    metric_subject,
    sync_preferences,
)
from phoneagent.privacy.export import TABLES, rows
from phoneagent.privacy.gate import (
    CLOUD_UPLOAD_PURPOSE,
    LOG_UPLOAD_PURPOSE,
    recipient_region,
    upload_allowed,
)
from phoneagent.privacy.profile import age_on, current_user_profile, today_utc
from phoneagent.privacy.regions import REGIONS
from phoneagent.store import Store
from phoneagent.store.ledger import AccountRow, ConsentEntry, Disclosure
from phoneagent.upload.endpoints import EndpointError, endpoints_path, is_loopback, load_endpoints

PASS, FAIL, NA = "pass", "fail", "n/a"
YEAR_S = 365 * 86400
_PSEUDONYM = re.compile(r"[0-9a-f]{32}")
_EXPORT_LIKE = re.compile(r"\.(json|csv|zip|html|partial|txt|sqlite|sqlite3|bak)$|-journal$", re.I)
_DB_FILES = {DATABASE_NAME, DATABASE_NAME + "-wal", DATABASE_NAME + "-shm"}


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    status: str
    evidence: str


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the checks read, loaded once."""

    data_dir: Path
    now: int
    account: AccountRow | None
    history: list[ConsentEntry]
    disclosures: list[Disclosure]
    columns: dict[str, list[str]]
    settings: list[str]


def granted_at(history: Sequence[ConsentEntry], subject: str, at: int) -> bool:
    """Whether ``subject`` was granted at time ``at`` per the ledger (defaults: off)."""
    state = False
    for entry in history:
        if entry.subject == subject and entry.scope == "" and entry.at <= at:
            state = entry.granted
    return state


def _enc(store: Store, f: _Facts) -> Check:
    problems = []
    with database_path(f.data_dir).open("rb") as db:
        if db.read(16).startswith(b"SQLite format 3"):
            problems.append("database file is plaintext SQLite")
    for path in f.data_dir.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.name in _DB_FILES and mode & 0o077:
            problems.append(f"{path.name} mode {mode:04o}")
        if path.is_file() and path.name not in _DB_FILES and _EXPORT_LIKE.search(path.name):
            problems.append(f"unrequested copy? {path.name}")
        if path.is_file() and path.suffix == ".key":
            problems.append(f"{path.name}: a key file beside the database opens it")
    journal, temp = store.pragma("journal_mode"), store.pragma("temp_store")
    if journal != "wal" or temp != "2":
        problems.append(f"journal_mode={journal} temp_store={temp}")
    if problems:
        return Check("PR-ENC", FAIL, "; ".join(problems))
    return Check(
        "PR-ENC", PASS, "encrypted database, owner-only files, WAL, temp in memory, no loose copies"
    )


def _link(store: Store, f: _Facts) -> Check:
    devices = [d.address for d in store.list_devices()]
    if not devices:
        return Check("PR-LINK", NA, "no device recorded")
    unbonded = set(devices) - set(store.list_bonds())
    open_links = [d for d in store.list_devices() if d.address in unbonded and d.live_derived]
    if open_links:
        return Check(
            "PR-LINK",
            FAIL,
            f"{len(open_links)} device(s) need no encryption (InfiniTime) and have no bond in"
            " the store: their live values and relays may cross the air unencrypted;"
            " `phoneagent pair --bond` encrypts the link (docs/infinitime.md)",
        )
    if unbonded:
        return Check(
            "PR-LINK",
            NA,
            f"{len(unbonded)} of {len(devices)} device(s) have no bond in the store "
            "(on BlueZ the operating system holds the bond)",
        )
    return Check("PR-LINK", PASS, f"all {len(devices)} device(s) bonded (LE Secure Connections)")


def _optout(store: Store, f: _Facts) -> Check:
    wanted = sync_preferences(store)
    leaks = []
    for metric in wanted.opted_out:
        since = max(e.at for e in f.history if e.subject == metric_subject(metric))
        found = store.ledger.metric_samples_since(metric, since)
        if found:
            leaks.append(f"{found} {metric.key} sample(s) after the opt-out")
    if leaks:
        return Check("PR-OPTOUT", FAIL, "; ".join(leaks))
    names = ", ".join(sorted(m.key for m in wanted.opted_out)) or "none"
    return Check("PR-OPTOUT", PASS, f"opted out: {names}; nothing of them stored since")


def _forbidden_columns(f: _Facts, words: str) -> list[str]:
    pattern = re.compile(words, re.I)
    found = [t for t in f.columns if pattern.search(t)]
    found += [f"{t}.{c}" for t, cols in f.columns.items() for c in cols if pattern.search(c)]
    return found + [f"setting {k}" for k in f.settings if pattern.search(k)]


def _profile(store: Store, f: _Facts) -> Check:
    secret = _forbidden_columns(f, r"password|passwd|secret")
    if secret:
        return Check("PR-PROFILE", FAIL, f"password-like data stored: {secret}")
    if f.account is None or f.account.guest:
        return Check("PR-PROFILE", NA, "guest mode: no account profile; no password stored")
    if current_user_profile(store) is None:
        return Check("PR-PROFILE", FAIL, "account profile incomplete")
    return Check(
        "PR-PROFILE",
        PASS,
        "region, birth date, sex, height, weight stored; watch gets age/sex/height/weight only; "
        "no password",
    )


def _nothing_stored(check_id: str, words: str, what: str) -> Callable[[Store, _Facts], Check]:
    def check(store: Store, f: _Facts) -> Check:
        found = _forbidden_columns(f, words)
        if found:
            return Check(check_id, FAIL, f"{what} may be stored: {found}")
        return Check(check_id, PASS, f"no table, column or setting holds {what}")

    return check


def _device(store: Store, f: _Facts) -> Check:
    bad = [d.address for d in store.list_devices() if not _PSEUDONYM.fullmatch(d.pseudonym)]
    if bad:
        return Check("PR-DEVICE", FAIL, f"{len(bad)} device(s) without a random pseudonym")
    early = [
        d
        for d in f.disclosures
        if d.purpose == CLOUD_UPLOAD_PURPOSE
        and "device_info" in d.categories
        and not granted_at(f.history, CLOUD_SYNC, d.at)
    ]
    if early:
        return Check("PR-DEVICE", FAIL, f"{len(early)} device upload(s) while cloud sync was off")
    return Check(
        "PR-DEVICE", PASS, "device info local; pseudonyms only; uploaded only with sync on"
    )


def _logs(store: Store, f: _Facts) -> Check:
    directory = logs_dir(f.data_dir)
    files = sorted(directory.glob(LOG_NAME + "*")) if directory.is_dir() else []
    if not files:
        return Check("PR-LOGS", PASS, "no log files")
    old = [p.name for p in files if p.stat().st_mtime < f.now - KEEP_DAYS * 86400]
    clear = [
        p.name
        for p in files
        if redact(p.read_text(errors="replace")) != p.read_text(errors="replace")
    ]
    if old or clear:
        return Check("PR-LOGS", FAIL, f"older than {KEEP_DAYS} days: {old}; not redacted: {clear}")
    return Check("PR-LOGS", PASS, f"{len(files)} file(s), all within {KEEP_DAYS} days, redacted")


def _cloud_disclosures(f: _Facts) -> list[Disclosure]:
    return [d for d in f.disclosures if d.purpose == CLOUD_UPLOAD_PURPOSE]


def _guest(store: Store, f: _Facts) -> Check:
    if f.account is not None and not f.account.guest:
        return Check("PR-GUEST", NA, "account mode")
    decision = upload_allowed(store)
    if decision.allowed or store.ledger.upload_endpoints():
        return Check("PR-GUEST", FAIL, "guest data is uploadable or was uploaded")
    return Check("PR-GUEST", PASS, f"guest: upload refused ({decision.reason}); nothing uploaded")


def _cloud(store: Store, f: _Facts) -> Check:
    ever = any(e.subject == CLOUD_SYNC and e.granted for e in f.history)
    if store.ledger.upload_endpoints() and not ever:
        return Check("PR-CLOUD", FAIL, "upload cursors exist but cloud sync was never turned on")
    off = [d for d in _cloud_disclosures(f) if not granted_at(f.history, CLOUD_SYNC, d.at)]
    if off:
        return Check("PR-CLOUD", FAIL, f"{len(off)} upload(s) while cloud sync was off")
    pending = len(store.ledger.erase_requests(pending_only=True))
    state = "on" if granted_at(f.history, CLOUD_SYNC, f.now) else "off"
    return Check("PR-CLOUD", PASS, f"cloud sync {state}; {pending} erase request(s) pending")


def _anon(store: Store, f: _Facts) -> Check:
    identifying = _forbidden_columns(f, r"e_?mail|phone")
    pseudonym_ok = f.account is None or _PSEUDONYM.fullmatch(f.account.pseudonym)
    if identifying or not pseudonym_ok:
        return Check("PR-ANON", FAIL, f"identifying fields: {identifying}")
    return Check("PR-ANON", PASS, "random user and device pseudonyms; no e-mail or phone stored")


def _share(store: Store, f: _Facts) -> Check:
    automatic = (CLOUD_UPLOAD_PURPOSE, LOG_UPLOAD_PURPOSE)
    unasked = [d for d in f.disclosures if d.purpose not in automatic and not d.user_request]
    if unasked:
        return Check("PR-SHARE", FAIL, f"{len(unasked)} disclosure(s) not requested by the user")
    shared = sum(1 for d in f.disclosures if d.purpose not in automatic)
    return Check("PR-SHARE", PASS, f"{shared} share(s), each at the user's request, all ledgered")


def _tls(store: Store, f: _Facts) -> Check:
    path = endpoints_path(f.data_dir)
    if not path.exists():
        return Check("PR-TLS", NA, f"no cloud endpoints configured ({path.name})")
    try:
        regions = load_endpoints(path).regions
    except EndpointError as error:
        return Check("PR-TLS", FAIL, str(error))
    refused: list[str] = []
    opted_in: list[str] = []
    for name, endpoint in sorted(regions.items()):
        if endpoint.tls or is_loopback(endpoint.host):
            continue
        (opted_in if endpoint.allow_plaintext else refused).append(name)
    if refused:
        return Check("PR-TLS", FAIL, f"plaintext to a remote broker without opt-in: {refused}")
    note = f"; plaintext by explicit opt-in: {opted_in}" if opted_in else ""
    return Check("PR-TLS", PASS, f"{len(regions)} endpoint(s): TLS or loopback{note}")


def _region(store: Store, f: _Facts) -> Check:
    if f.account is None or f.account.guest:
        return Check("PR-REGION", NA, "guest mode")
    home = f.account.region
    if home not in REGIONS:
        return Check("PR-REGION", FAIL, f"unknown home region {home}")
    allowed = {home} | {
        e.subject.removeprefix(CROSS_BORDER_PREFIX)
        for e in f.history
        if e.granted and e.subject.startswith(CROSS_BORDER_PREFIX)
    }
    foreign = [
        region
        for region, at in ((recipient_region(d.recipient), d.at) for d in _cloud_disclosures(f))
        if region != home and not granted_at(f.history, cross_border_subject(region), at)
    ]
    stray = sorted(store.ledger.upload_endpoints() - allowed) + foreign
    if stray:
        return Check("PR-REGION", FAIL, f"uploads outside the allowed regions: {stray}")
    return Check("PR-REGION", PASS, f"home region {home}; uploads only to {sorted(allowed)}")


def _retain(store: Store, f: _Facts) -> Check:
    pending = store.ledger.erase_requests(pending_only=True)
    late = [r.id for r in pending if r.deadline_at < f.now]
    if late:
        return Check("PR-RETAIN", FAIL, f"erase request(s) {late} past the 90-day deadline")
    if not pending:
        return Check("PR-RETAIN", PASS, "no erasure pending")
    due = min(r.deadline_at for r in pending)
    days = (due - f.now) // 86400
    return Check("PR-RETAIN", PASS, f"{len(pending)} erasure(s) pending, next due in {days} days")


def _access(store: Store, f: _Facts) -> Check:
    counts = {t: sum(1 for _ in rows(store, t)) for t in TABLES}
    return Check(
        "PR-ACCESS",
        PASS,
        f"export (json, csv) covers {sum(counts.values())} record(s) in {len(counts)} tables",
    )


def _correct(store: Store, f: _Facts) -> Check:
    if f.account is None or f.account.guest:
        return Check("PR-CORRECT", NA, "guest mode: no account profile")
    if current_user_profile(store) is None:
        return Check("PR-CORRECT", FAIL, "the account's profile cannot be sent to the watch")
    return Check("PR-CORRECT", PASS, "every sync session sends the account's current profile")


def _withdraw(store: Store, f: _Facts) -> Check:
    unversioned = [e.id for e in f.history if not e.policy_version]
    if unversioned:
        return Check("PR-WITHDRAW", FAIL, f"consent entries without policy version: {unversioned}")
    withdrawn = sum(1 for e in f.history if not e.granted)
    return Check(
        "PR-WITHDRAW", PASS, f"{len(f.history)} consent change(s), {withdrawn} withdrawal(s)"
    )


def _delete(store: Store, f: _Facts) -> Check:
    orphans = store.ledger.orphan_rows()
    if orphans:
        return Check("PR-DELETE", FAIL, f"{orphans} row(s) left behind by a deletion")
    return Check("PR-DELETE", PASS, "no data left behind by deletions")


def _minor(store: Store, f: _Facts) -> Check:
    if f.account is None or f.account.guest or f.account.birth_date is None:
        return Check("PR-MINOR", NA, "guest mode")
    rule = REGIONS[str(f.account.region)]
    age = age_on(date.fromisoformat(f.account.birth_date), today_utc())
    if age < rule.minimum_age:
        return Check("PR-MINOR", FAIL, f"account holder under {rule.minimum_age}")
    return Check("PR-MINOR", PASS, f"account holder meets the minimum age {rule.minimum_age}")


def _disclose(store: Store, f: _Facts) -> Check:
    recent = [d for d in f.disclosures if d.at >= f.now - YEAR_S]
    recipients = sorted({d.recipient for d in recent})
    return Check("PR-DISCLOSE", PASS, f"{len(recent)} disclosure(s) in 12 months to {recipients}")


def _version(store: Store, f: _Facts) -> Check:
    accepted = [e.policy_version for e in f.history if e.subject == POLICY and e.granted]
    if f.account is not None and not f.account.guest and not accepted:
        return Check("PR-VERSION", FAIL, "account without a recorded policy acceptance")
    latest = accepted[-1] if accepted else "none"
    notice = "" if latest == POLICY_VERSION else "; the new version is shown to the user"
    return Check("PR-VERSION", PASS, f"accepted {latest}, current {POLICY_VERSION}{notice}")


CHECKS: tuple[Callable[[Store, _Facts], Check], ...] = (
    _enc,
    _link,
    _optout,
    _profile,
    _nothing_stored("PR-CALL", r"call|contact|phone", "call data"),
    _nothing_stored("PR-NOTIF", r"notif", "notification content"),
    _nothing_stored("PR-MUSIC", r"music|track|song|playing", "music state"),
    _nothing_stored("PR-APPLIST", r"app_?list|packages|installed", "the app list"),
    _device,
    _logs,
    _guest,
    _cloud,
    _anon,
    _share,
    _tls,
    _region,
    _retain,
    _access,
    _correct,
    _withdraw,
    _delete,
    _minor,
    _disclose,
    _version,
)


def audit(store: Store, data_dir: Path, now: float | None = None) -> list[Check]:
    """One ``Check`` per POLICY.md requirement id, in the table's order."""
    facts = _Facts(
        data_dir,
        int(time.time() if now is None else now),
        store.ledger.get_account(),
        store.ledger.consent_history(),
        store.ledger.disclosures(),
        store.ledger.table_columns(),
        store.ledger.setting_keys(),
    )
    return [check(store, facts) for check in CHECKS]
