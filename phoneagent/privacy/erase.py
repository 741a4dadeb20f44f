"""Deleting data locally and asking the cloud to delete its copy (PR-DELETE, PR-RETAIN)."""

from __future__ import annotations

from dataclasses import dataclass

from phoneagent.privacy.consent import CLOUD_SYNC, CROSS_BORDER_PREFIX
from phoneagent.store import Store
from phoneagent.store.errors import UnknownDeviceError
from phoneagent.store.ledger import AccountRow, EraseFilter, EraseRequest
from protocol.metrics import Metric

EVERYTHING = EraseFilter()


@dataclass(frozen=True, slots=True)
class Deletion:
    samples: int
    devices: int
    erase_requests: tuple[EraseRequest, ...]


def cloud_endpoints(store: Store, account: AccountRow) -> list[str]:
    """Every endpoint that may hold the account's data; empty if cloud sync was never on.

    The home region, any region ever given cross-border consent, and any endpoint that
    acknowledged an upload: an erase request must reach all of them.
    """
    history = store.ledger.consent_history()
    if account.guest or not any(e.subject == CLOUD_SYNC and e.granted for e in history):
        return []
    endpoints = {str(account.region)} | store.ledger.upload_endpoints()
    endpoints |= {
        e.subject.removeprefix(CROSS_BORDER_PREFIX)
        for e in history
        if e.granted and e.subject.startswith(CROSS_BORDER_PREFIX)
    }
    return sorted(endpoints)


def request_cloud_erasure(
    store: Store, scope: str, what: EraseFilter = EVERYTHING
) -> list[EraseRequest]:
    """Record erase requests for the uploader to send; none for a guest or a never-synced account.

    Call it before deleting locally: it needs the account and the upload positions.
    """
    account = store.ledger.get_account()
    if account is None:
        return []
    endpoints = cloud_endpoints(store, account)
    if not endpoints:
        return []
    return store.ledger.add_erase_requests(scope, account.pseudonym, endpoints, what)


def delete_data(
    store: Store,
    *,
    device: str | None = None,
    metric: Metric | None = None,
    since: int | None = None,
    until: int | None = None,
) -> Deletion:
    """Delete matching data here at once and request the same in the cloud.

    A device alone goes whole (samples, gaps, sync position, bond: PR-WITHDRAW); with a metric
    or time range only its matching samples go. No filter at all deletes every device's
    data but keeps the account (``delete_account`` removes that).
    """
    pseudonym = None
    if device is not None:
        record = store.get_device(device)
        if record is None:
            raise UnknownDeviceError.of(device)
        pseudonym = record.pseudonym
    requests = request_cloud_erasure(store, "data", EraseFilter(pseudonym, metric, since, until))
    if metric is None and since is None and until is None:
        if device is None:
            devices = len(store.list_devices())
            samples = store.ledger.wipe_personal_data(keep_account=True)
            return Deletion(samples, devices, tuple(requests))
        samples = sum(store.counts().get(device, {}).values())
        store.delete_device(device)
        return Deletion(samples, 1, tuple(requests))
    samples = store.ledger.delete_samples(device, metric, since, until)
    return Deletion(samples, 0, tuple(requests))
