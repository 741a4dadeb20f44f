"""Rows of the privacy tables (schema step 3): account, ledgers, upload positions, erasures.

``Ledger``, owned by a ``Store`` (``store.ledger``), holds their SQL next to the tables'
definitions instead of growing ``Store``. The policy rules (who may do what) live in
``phoneagent.privacy``; this module only reads and writes.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phoneagent.store.errors import UnknownDeviceError
from phoneagent.store.sql import Connection, Run, Transact
from protocol.metrics import Metric

ERASE_DEADLINE_S = 90 * 86400  # policy section 7: erased "no later than 90 days"
# Settings rows that hold personal data (the sync engine's profile and consent copy).
PERSONAL_SETTINGS = ("sync.profile", "sync.opted_out")


@dataclass(frozen=True, slots=True)
class AccountRow:
    guest: bool
    pseudonym: str  # user pseudonym (account) or random install id (guest)
    region: str | None
    birth_date: str | None  # ISO 8601 date
    sex: int | None
    height_cm: int | None
    weight_decikg: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    id: int
    at: int
    subject: str
    scope: str
    granted: bool
    policy_version: str


@dataclass(frozen=True, slots=True)
class UploadConsents:
    """What an upload decision reads (``Ledger.upload_consents``): the account's kind and
    home region, and the newest entry of the two consents involved (None: never recorded,
    the subject's default holds)."""

    guest: bool
    home: str | None
    cloud: bool | None
    crossing: bool | None


@dataclass(frozen=True, slots=True)
class Disclosure:
    id: int
    at: int
    recipient: str
    purpose: str
    categories: tuple[str, ...]
    record_count: int
    user_request: bool


@dataclass(frozen=True, slots=True)
class NewDisclosure:
    """A disclosure row to write (``record_disclosure``, ``record_upload``)."""

    recipient: str
    purpose: str
    categories: tuple[str, ...]
    record_count: int
    at: int | None = None  # when the data went (store clock); None: as it is recorded

    def __post_init__(self) -> None:
        if any("," in c for c in self.categories):
            raise ValueError(f"a category name cannot contain a comma: {list(self.categories)}")


@dataclass(frozen=True, slots=True)
class EraseRequest:
    """Data the cloud must erase; the NULL filters of a 'data' request mean "any"."""

    id: int
    scope: str  # 'account' | 'data'
    user_pseudonym: str
    device_pseudonym: str | None
    metric: str | None
    since: int | None
    until: int | None
    endpoint: str
    requested_at: int
    deadline_at: int
    sent_at: int | None
    confirmed_at: int | None

    @property
    def pending(self) -> bool:
        return self.confirmed_at is None


@dataclass(frozen=True, slots=True)
class EraseFilter:
    """What to erase: everything when all fields are None."""

    device_pseudonym: str | None = None
    metric: Metric | None = None
    since: int | None = None
    until: int | None = None


# The whole upload decision in one statement: the account row (``a``) and the newest
# ledger entry of each consent involved (index consent_by_subject), one statement and so one
# snapshot. Named parameters :cloud and :crossing, so that the uploader's chunk read
# (``Store.upload_chunk``) selects the same columns beside a chunk's samples.
UPLOAD_CONSENT_COLUMNS = (
    "a.guest, a.region,"
    " (SELECT granted FROM consent_ledger WHERE subject = :cloud AND scope = ''"
    "  ORDER BY id DESC LIMIT 1),"
    " (SELECT granted FROM consent_ledger WHERE subject = :crossing AND scope = ''"
    "  ORDER BY id DESC LIMIT 1)"
)
_UPLOAD_CONSENTS = f"SELECT {UPLOAD_CONSENT_COLUMNS} FROM account AS a WHERE a.id = 1"
_ACCOUNT_COLUMNS = "guest, pseudonym, region, birth_date, sex, height_cm, weight_decikg, created_at"
_ERASE_COLUMNS = (
    "id, scope, user_pseudonym, device_pseudonym, metric, since, until, endpoint,"
    " requested_at, deadline_at, sent_at, confirmed_at"
)


def _account(conn: Connection) -> AccountRow | None:
    row = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM account WHERE id = 1").fetchone()
    if row is None:
        return None
    guest, *rest = row
    return AccountRow(bool(guest), *rest)


def _written_account(conn: Connection) -> AccountRow:
    """The account row just written in this transaction."""
    account = _account(conn)
    assert account is not None
    return account


def upload_consents_of(row: Sequence[Any] | None) -> UploadConsents | None:
    """``UploadConsents`` from the four ``UPLOAD_CONSENT_COLUMNS`` (guest NULL or no row:
    no account)."""
    if row is None or row[0] is None:
        return None
    guest, home, cloud, crossing = row[:4]
    return UploadConsents(
        bool(guest),
        home,
        None if cloud is None else bool(cloud),
        None if crossing is None else bool(crossing),
    )


class Ledger:
    """The privacy tables of one store (``Store.ledger``): every method is one transaction
    under the store's lock, or a read of one statement, its own snapshot without the write
    lock (the uploader's reads every second: ``upload_consents``, ``get_account``,
    ``erase_requests``, ``get_upload_position``), so a consent change or a deletion is
    recorded whole or not at all, and a full disk or a damaged page surfaces as the
    store's own errors."""

    def __init__(self, transact: Transact, snapshot: Run) -> None:
        """``transact``: an IMMEDIATE transaction; ``snapshot``: one statement's read."""
        self._transact = transact
        self._snapshot = snapshot

    # -- account ---------------------------------------------------------------------------

    def get_account(self) -> AccountRow | None:
        return self._snapshot(lambda conn, now: _account(conn))

    def ensure_guest(self) -> AccountRow:
        """The identity row, creating a guest one (fresh random install id) when there is none."""

        def work(conn: Connection, now: int) -> AccountRow:
            conn.execute(
                "INSERT OR IGNORE INTO account (id, guest, pseudonym, created_at)"
                " VALUES (1, 1, ?, ?)",
                (secrets.token_hex(16), now),
            )
            return _written_account(conn)

        return self._transact(work)

    def put_account(
        self,
        *,
        region: str,
        birth_date: str,
        sex: int,
        height_cm: int,
        weight_decikg: int,
        new_pseudonym: bool,
    ) -> AccountRow:
        """Write the account's profile; ``new_pseudonym`` starts a fresh user identity.

        A guest becoming an account always gets a new pseudonym: the install id never
        leaves the phone, so it must not turn into an uploaded identifier.
        """

        def work(conn: Connection, now: int) -> AccountRow:
            if new_pseudonym:
                conn.execute("DELETE FROM account")
                conn.execute(
                    "INSERT INTO account (id, guest, pseudonym, region, birth_date, sex, height_cm,"
                    " weight_decikg, created_at) VALUES (1, 0, ?, ?, ?, ?, ?, ?, ?)",
                    (secrets.token_hex(16), region, birth_date, sex, height_cm, weight_decikg, now),
                )
            else:
                conn.execute(
                    "UPDATE account SET region = ?, birth_date = ?, sex = ?, height_cm = ?,"
                    " weight_decikg = ? WHERE id = 1 AND guest = 0",
                    (region, birth_date, sex, height_cm, weight_decikg),
                )
            return _written_account(conn)

        return self._transact(work)

    def wipe_personal_data(
        self,
        *,
        keep_account: bool,
        keep_consents: Sequence[str] = (),
        policy_version: str = "",
    ) -> int:
        """Delete every device (samples, gaps, positions: all cascade), bond and personal setting.

        Without ``keep_account`` the account row and consent ledger go too, except the
        entries of the ``keep_consents`` subjects: those stay, each still granted one closed
        by a withdrawal now under ``policy_version``, because the disclosure ledger stays and
        each disclosure is judged by the consent in force when it was made. The disclosure
        ledger and erase requests stay: they are the record of what left the phone and of
        the erasures still owed. Returns the number of samples deleted.
        """
        marks = ", ".join("?" * len(keep_consents))

        def work(conn: Connection, now: int) -> int:
            samples = int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])
            conn.execute("DELETE FROM devices")
            conn.execute("DELETE FROM bonds")
            if not keep_account:
                conn.execute("DELETE FROM account")
                conn.execute(
                    "INSERT INTO consent_ledger (at, subject, scope, granted, policy_version)"
                    " SELECT ?, subject, scope, 0, ? FROM consent_ledger AS c"
                    f" WHERE subject IN ({marks}) AND granted = 1 AND id = (SELECT max(id)"
                    " FROM consent_ledger WHERE subject = c.subject AND scope = c.scope)",
                    (now, policy_version, *keep_consents),
                )
                conn.execute(
                    f"DELETE FROM consent_ledger WHERE subject NOT IN ({marks})", keep_consents
                )
                conn.executemany(
                    "DELETE FROM settings WHERE key = ?", [(k,) for k in PERSONAL_SETTINGS]
                )
            return samples

        return self._transact(work)

    def delete_samples(
        self,
        device: str | None,
        metric: Metric | None,
        since: int | None,
        until: int | None,
    ) -> int:
        """Delete the samples matching every given filter (``since <= ts < until``)."""
        clauses: list[str] = []
        params: list[Any] = []
        if metric is not None:
            clauses.append("metric = ?")
            params.append(int(metric))
        if since is not None:
            clauses.append("ts >= ?")
            params.append(since)
        if until is not None:
            clauses.append("ts < ?")
            params.append(until)

        def work(conn: Connection, now: int) -> int:
            where = list(clauses)
            values = list(params)
            if device is not None:
                row = conn.execute("SELECT id FROM devices WHERE address = ?", (device,)).fetchone()
                if row is None:
                    raise UnknownDeviceError.of(device)
                where.append("device_id = ?")
                values.append(int(row[0]))
            condition = " AND ".join(where) if where else "1"
            return int(conn.execute(f"DELETE FROM samples WHERE {condition}", values).rowcount)

        return self._transact(work)

    # -- consent ledger ----------------------------------------------------------------------

    def append_consent(
        self, subject: str, scope: str, granted: bool, policy_version: str
    ) -> ConsentEntry:
        def work(conn: Connection, now: int) -> ConsentEntry:
            cursor = conn.execute(
                "INSERT INTO consent_ledger (at, subject, scope, granted, policy_version)"
                " VALUES (?, ?, ?, ?, ?)",
                (now, subject, scope, int(granted), policy_version),
            )
            return ConsentEntry(int(cursor.lastrowid), now, subject, scope, granted, policy_version)

        return self._transact(work)

    def consent_history(self) -> list[ConsentEntry]:
        """Every entry, oldest first."""

        def work(conn: Connection, now: int) -> list[ConsentEntry]:
            rows = conn.execute(
                "SELECT id, at, subject, scope, granted, policy_version FROM consent_ledger"
                " ORDER BY id"
            ).fetchall()
            return [ConsentEntry(i, at, s, sc, bool(g), v) for i, at, s, sc, g, v in rows]

        return self._transact(work)

    def latest_consents(self) -> dict[tuple[str, str], ConsentEntry]:
        """The current state: the newest entry per (subject, scope)."""
        return {(e.subject, e.scope): e for e in self.consent_history()}

    def ever_granted(self, subject: str) -> bool:
        def work(conn: Connection, now: int) -> bool:
            row = conn.execute(
                "SELECT 1 FROM consent_ledger WHERE subject = ? AND granted = 1 LIMIT 1", (subject,)
            ).fetchone()
            return row is not None

        return self._transact(work)

    def upload_consents(self, cloud: str, crossing: str) -> UploadConsents | None:
        """The account and the newest ``cloud`` and ``crossing`` consents (None: no
        account), read without a transaction: one statement is one snapshot by itself,
        and it takes no write lock."""

        def work(conn: Connection, now: int) -> UploadConsents | None:
            query = {"cloud": cloud, "crossing": crossing}
            return upload_consents_of(conn.execute(_UPLOAD_CONSENTS, query).fetchone())

        return self._snapshot(work)

    # -- disclosure ledger -------------------------------------------------------------------

    def record_disclosure(
        self,
        recipient: str,
        purpose: str,
        categories: Sequence[str],
        record_count: int,
        *,
        user_request: bool,
    ) -> Disclosure:
        """Write down that personal data left the phone; call it once the transfer happened."""
        entry = NewDisclosure(recipient, purpose, tuple(categories), record_count)
        return self._transact(
            lambda conn, now: self._insert_disclosure(conn, now, entry, user_request)
        )

    @staticmethod
    def _insert_disclosure(
        conn: Connection, now: int, d: NewDisclosure, user_request: bool
    ) -> Disclosure:
        at = now if d.at is None else d.at
        cursor = conn.execute(
            "INSERT INTO disclosure_ledger (at, recipient, purpose, categories, record_count,"
            " user_request) VALUES (?, ?, ?, ?, ?, ?)",
            (at, d.recipient, d.purpose, ",".join(d.categories), d.record_count, int(user_request)),
        )
        row_id = int(cursor.lastrowid)
        return Disclosure(
            row_id, at, d.recipient, d.purpose, d.categories, d.record_count, user_request
        )

    def disclosures(self, since: int | None = None) -> list[Disclosure]:
        """Disclosures at or after ``since`` (all when None), oldest first."""

        def work(conn: Connection, now: int) -> list[Disclosure]:
            rows = conn.execute(
                "SELECT id, at, recipient, purpose, categories, record_count, user_request"
                " FROM disclosure_ledger WHERE at >= ? ORDER BY at, id",
                (-(2**63) if since is None else since,),
            ).fetchall()
            return [
                Disclosure(i, at, r, p, tuple(c.split(",")) if c else (), n, bool(u))
                for i, at, r, p, c, n, u in rows
            ]

        return self._transact(work)

    # -- upload positions (the uploader's) ---------------------------------------------------

    def get_upload_position(self, device: str, endpoint: str) -> int | None:
        """The highest seq of ``device`` the ``endpoint`` acknowledged; None before the first."""

        def work(conn: Connection, now: int) -> int | None:
            row = conn.execute(
                "SELECT u.last_seq FROM upload_cursors AS u JOIN devices AS d ON d.id = u.device_id"
                " WHERE d.address = ? AND u.endpoint = ?",
                (device, endpoint),
            ).fetchone()
            return None if row is None else int(row[0])

        return self._snapshot(work)

    @staticmethod
    def _put_upload_position(
        conn: Connection, now: int, device: str, endpoint: str, last_seq: int
    ) -> bool:
        """False when the device is no longer stored (nothing to bound: its data is gone)."""
        row = conn.execute("SELECT id FROM devices WHERE address = ?", (device,)).fetchone()
        if row is None:
            return False
        conn.execute(
            "INSERT INTO upload_cursors (device_id, endpoint, last_seq, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id, endpoint) DO UPDATE SET"
            " last_seq = excluded.last_seq, updated_at = excluded.updated_at",
            (int(row[0]), endpoint, last_seq, now),
        )
        return True

    def record_upload(
        self,
        endpoint: str,
        positions: Mapping[str, int],
        disclosure: NewDisclosure | None,
        *,
        durable: bool = True,
    ) -> None:
        """What an upload session sent since its last record, in one transaction (one fsync,
        not one per row): the devices' upload positions where the endpoint acknowledged
        them, and the disclosure row of what went (automatic, not at the user's request).
        Killed before the commit, neither is written and the data goes again. A device
        deleted meanwhile has no position to keep; what was sent of it is still disclosed.
        Not ``durable`` (within a long upload): without the fsync, so a power loss may take
        both back, and the data goes again. The log keeps a prefix of its commits, so a
        position never survives without the samples before it, and the session's last
        record, durable, syncs them all.
        """

        def work(conn: Connection, now: int) -> None:
            for device, last_seq in positions.items():
                self._put_upload_position(conn, now, device, endpoint, last_seq)
            if disclosure is not None:
                self._insert_disclosure(conn, now, disclosure, False)

        self._transact(work, durable=durable)

    def upload_endpoints(self) -> set[str]:
        """Every endpoint that ever acknowledged an upload of a device still stored."""

        def work(conn: Connection, now: int) -> set[str]:
            return {str(r[0]) for r in conn.execute("SELECT DISTINCT endpoint FROM upload_cursors")}

        return self._transact(work)

    # -- erase requests ----------------------------------------------------------------------

    def add_erase_requests(
        self,
        scope: str,
        user_pseudonym: str,
        endpoints: Sequence[str],
        what: EraseFilter,
    ) -> list[EraseRequest]:
        """One request per endpoint, each due 90 days from now."""

        def work(conn: Connection, now: int) -> list[int]:
            ids = []
            for endpoint in endpoints:
                cursor = conn.execute(
                    "INSERT INTO erase_requests (scope, user_pseudonym, device_pseudonym, metric,"
                    " since, until, endpoint, requested_at, deadline_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        scope,
                        user_pseudonym,
                        what.device_pseudonym,
                        None if what.metric is None else what.metric.key,
                        what.since,
                        what.until,
                        endpoint,
                        now,
                        now + ERASE_DEADLINE_S,
                    ),
                )
                ids.append(int(cursor.lastrowid))
            return ids

        wanted = set(self._transact(work))
        return [r for r in self.erase_requests() if r.id in wanted]

    def erase_requests(self, *, pending_only: bool = False) -> list[EraseRequest]:
        """Oldest first; ``pending_only``: not yet confirmed by the cloud."""
        condition = " WHERE confirmed_at IS NULL" if pending_only else ""

        def work(conn: Connection, now: int) -> list[EraseRequest]:
            rows = conn.execute(
                f"SELECT {_ERASE_COLUMNS} FROM erase_requests{condition} ORDER BY id"
            ).fetchall()
            return [EraseRequest(*row) for row in rows]

        return self._snapshot(work)

    def mark_erase_sent(self, request_id: int) -> None:
        """The uploader published the request (the broker acknowledged it)."""

        def work(conn: Connection, now: int) -> None:
            conn.execute(
                "UPDATE erase_requests SET sent_at = ? WHERE id = ? AND sent_at IS NULL",
                (now, request_id),
            )

        self._transact(work)

    def mark_erase_confirmed(self, request_id: int) -> None:
        """The cloud confirmed the erasure; the request is no longer pending."""

        def work(conn: Connection, now: int) -> None:
            conn.execute(
                "UPDATE erase_requests SET confirmed_at = ?, sent_at = coalesce(sent_at, ?)"
                " WHERE id = ? AND confirmed_at IS NULL",
                (now, now, request_id),
            )

        self._transact(work)

    # -- introspection for the privacy audit -------------------------------------------------

    def table_columns(self) -> dict[str, list[str]]:
        """Every table of the database and its column names."""

        def work(conn: Connection, now: int) -> dict[str, list[str]]:
            names = [
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            return {n: [str(c[1]) for c in conn.execute(f"PRAGMA table_info({n})")] for n in names}

        return self._transact(work)

    def setting_keys(self) -> list[str]:
        def work(conn: Connection, now: int) -> list[str]:
            return [str(r[0]) for r in conn.execute("SELECT key FROM settings ORDER BY key")]

        return self._transact(work)

    def orphan_rows(self) -> int:
        """Rows pointing at a device that no longer exists (a deletion that left data behind)."""

        def work(conn: Connection, now: int) -> int:
            return len(conn.execute("PRAGMA foreign_key_check").fetchall())

        return self._transact(work)

    def metric_samples_since(self, metric: Metric, since: int) -> int:
        def work(conn: Connection, now: int) -> int:
            return int(
                conn.execute(
                    "SELECT count(*) FROM samples WHERE metric = ? AND ts >= ?",
                    (int(metric), since),
                ).fetchone()[0]
            )

        return self._transact(work)
