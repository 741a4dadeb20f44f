"""Export of everything personal, as JSON or CSV (PR-ACCESS), documented in docs/privacy.md.

Tables and their columns are fixed here (``TABLES``) and are the documented schema.
Bond keys are not exported: they are security secrets of the link, not data about the
person, and a copy would let anyone impersonate the phone to the watch.

Files are written only to the path the person chose, owner-only (0600), first in a
hidden owner-only ``.NAME.*.partial`` folder beside it, renamed into place when complete
and removed on failure, so no plaintext copy is left behind that nobody asked for (PR-ENC).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from phoneagent.privacy.consent import POLICY_VERSION
from phoneagent.store import Store

FORMAT_NAME = "phoneagent-export"
# 2: devices name their personality and whether their samples are live-derived; every
# sample says where it came from (issue 20). Version 1's columns are unchanged.
FORMAT_VERSION = 2


Row = dict[str, Any]

TABLES: dict[str, tuple[str, ...]] = {
    "account": (
        "kind",
        "pseudonym",
        "region",
        "birth_date",
        "sex",
        "height_cm",
        "weight_kg",
        "created_at",
    ),
    "devices": (
        "address",
        "pseudonym",
        "name",
        "model",
        "serial",
        "firmware",
        "added_at",
        "personality",
        "live_derived",
    ),
    "samples": ("device", "seq", "time", "metric", "value", "unit", "raw", "source"),
    "gaps": ("device", "first_seq", "last_seq", "reason", "recorded_at"),
    "consent_ledger": ("id", "time", "subject", "scope", "granted", "policy_version"),
    "disclosure_ledger": (
        "id",
        "time",
        "recipient",
        "purpose",
        "categories",
        "record_count",
        "user_request",
    ),
    "erase_requests": (
        "id",
        "scope",
        "user_pseudonym",
        "device_pseudonym",
        "metric",
        "since",
        "until",
        "endpoint",
        "requested_at",
        "deadline_at",
        "sent_at",
        "confirmed_at",
    ),
}


def iso(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def _account(store: Store) -> Iterator[Row]:
    account = store.ledger.get_account()
    if account is None:
        return
    weight = None if account.weight_decikg is None else account.weight_decikg / 10
    yield {
        "kind": "guest" if account.guest else "account",
        "pseudonym": account.pseudonym,
        "region": account.region,
        "birth_date": account.birth_date,
        "sex": account.sex,
        "height_cm": account.height_cm,
        "weight_kg": weight,
        "created_at": iso(account.created_at),
    }


def _devices(store: Store) -> Iterator[Row]:
    for d in store.list_devices():
        yield {
            "address": d.address,
            "pseudonym": d.pseudonym,
            "name": d.name,
            "model": d.model,
            "serial": d.serial,
            "firmware": d.firmware,
            "added_at": iso(d.added_at),
            "personality": d.personality,
            "live_derived": d.live_derived,
        }


def _samples(store: Store) -> Iterator[Row]:
    sources = {d.address: d.source for d in store.list_devices()}
    for s in store.iter_samples():
        yield {
            "device": s.device,
            "seq": s.seq,
            "time": iso(s.timestamp),
            "metric": s.metric.key,
            "value": s.value,
            "unit": s.metric.unit,
            "raw": s.raw,
            "source": sources[s.device],
        }


def _gaps(store: Store) -> Iterator[Row]:
    for g in store.gaps():
        yield {
            "device": g.device,
            "first_seq": g.first_seq,
            "last_seq": g.last_seq,
            "reason": g.reason,
            "recorded_at": iso(g.recorded_at),
        }


def _consents(store: Store) -> Iterator[Row]:
    for e in store.ledger.consent_history():
        yield {
            "id": e.id,
            "time": iso(e.at),
            "subject": e.subject,
            "scope": e.scope,
            "granted": e.granted,
            "policy_version": e.policy_version,
        }


def _disclosures(store: Store) -> Iterator[Row]:
    for d in store.ledger.disclosures():
        yield {
            "id": d.id,
            "time": iso(d.at),
            "recipient": d.recipient,
            "purpose": d.purpose,
            "categories": ",".join(d.categories),
            "record_count": d.record_count,
            "user_request": d.user_request,
        }


def _erasures(store: Store) -> Iterator[Row]:
    for r in store.ledger.erase_requests():
        yield {
            "id": r.id,
            "scope": r.scope,
            "user_pseudonym": r.user_pseudonym,
            "device_pseudonym": r.device_pseudonym,
            "metric": r.metric,
            "since": iso(r.since),
            "until": iso(r.until),
            "endpoint": r.endpoint,
            "requested_at": iso(r.requested_at),
            "deadline_at": iso(r.deadline_at),
            "sent_at": iso(r.sent_at),
            "confirmed_at": iso(r.confirmed_at),
        }


_READERS: dict[str, Callable[[Store], Iterator[Row]]] = {
    "account": _account,
    "devices": _devices,
    "samples": _samples,
    "gaps": _gaps,
    "consent_ledger": _consents,
    "disclosure_ledger": _disclosures,
    "erase_requests": _erasures,
}


def rows(store: Store, table: str) -> Iterator[Row]:
    return _READERS[table](store)


@dataclass(frozen=True, slots=True)
class ExportResult:
    counts: dict[str, int]
    path: Path | None  # None: written to the given stream

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def categories(self) -> list[str]:
        return [table for table, n in self.counts.items() if n]


def write_json(store: Store, out: IO[str]) -> dict[str, int]:
    """Stream the export as one JSON object (samples are never all in memory)."""
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "exported_at": iso(int(datetime.now(UTC).timestamp())),
        "policy_version": POLICY_VERSION,
    }
    out.write(json.dumps(header)[:-1] + ', "tables": {')
    counts: dict[str, int] = {}
    for t, table in enumerate(TABLES):
        out.write(("," if t else "") + f"\n{json.dumps(table)}: [")
        count = 0
        for row in rows(store, table):
            out.write(("," if count else "") + "\n  " + json.dumps(row, ensure_ascii=False))
            count += 1
        out.write("\n]")
        counts[table] = count
    out.write("}}\n")
    return counts


def _write_csv(store: Store, table: str, out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=TABLES[table], lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows(store, table):
        writer.writerow(row)
        count += 1
    return count


def _private_file(path: Path) -> IO[bytes]:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _csv_files(store: Store, folder: Path) -> dict[str, int]:
    folder.mkdir(mode=0o700)
    counts = {}
    for table in TABLES:
        with (
            _private_file(folder / f"{table}.csv") as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
        ):
            counts[table] = _write_csv(store, table, text)
    return counts


def _csv_zip(store: Store, path: Path) -> dict[str, int]:
    counts = {}
    with _private_file(path) as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as bundle:
        for table in TABLES:
            with (
                bundle.open(f"{table}.csv", "w") as member,
                io.TextIOWrapper(member, encoding="utf-8", newline="") as text,
            ):
                counts[table] = _write_csv(store, table, text)
    return counts


def _json_file(store: Store, path: Path) -> dict[str, int]:
    with _private_file(path) as raw, io.TextIOWrapper(raw, encoding="utf-8") as text:
        return write_json(store, text)


def export(store: Store, fmt: str, out: Path) -> ExportResult:
    """Write the export to ``out`` (must not exist): JSON file, CSV folder, or CSV ``.zip``."""
    if out.exists():
        raise FileExistsError(f"{out} exists already; choose a new path.")
    if not out.parent.is_dir():  # named as it is, not as the partial folder's name
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(out.parent))
    writer: Callable[[Store, Path], dict[str, int]]
    if fmt == "json":
        writer = _json_file
    elif fmt == "csv":
        writer = _csv_zip if out.suffix.lower() == ".zip" else _csv_files
    else:
        raise ValueError(f"unknown export format {fmt!r}; json or csv")
    # A folder of our own beside ``out`` (owner-only, a name nobody else has): what fails
    # is removed with it, and nothing of the person's, such as their own ``out.partial``.
    try:
        partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as error:  # a read-only or full folder: said of ``out``, not of our name
        raise OSError(error.errno, error.strerror, str(out)) from error
    try:
        counts = writer(store, partial / out.name)
        (partial / out.name).rename(out)
    except OSError as error:  # a full disk names no file: the person is told of ``out``
        raise OSError(error.errno, error.strerror, str(out)) from error
    finally:
        shutil.rmtree(partial)
    return ExportResult(counts, out)


def record_share(store: Store, recipient: str, result: ExportResult) -> None:
    """A third party gets the export at the person's request: PR-SHARE's ledger entry."""
    store.ledger.record_disclosure(
        recipient,
        "export shared at the user's request",
        result.categories,
        result.records,
        user_request=True,
    )
