"""Sending the pending cloud erase requests now (``cloud clear``, an account's deletion).

Requests that cannot be sent stay pending: the audit tracks them against the 90-day
limit, and ``cloud clear`` or ``run`` sends them later.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from phoneagent.services.upload import broker_errors
from phoneagent.store import Store
from phoneagent.upload import EndpointError, Uploader, endpoints_path, load_endpoints

# Beyond the confirmation wait: connecting, publishing and disconnecting.
SLACK_S = 30.0
_PENDING = "the erase request(s) stay pending (phoneagent cloud clear retries)"


def send_erasures(data_dir: Path, store: Store, wait: float) -> int:
    """Send the pending erase requests to their regions' brokers, await confirmations for
    ``wait`` s; returns how many are still pending confirmation.

    Raises ``EndpointError`` without usable endpoints, ``BrokerUnreachableError`` or
    ``BrokerRefusedError`` when a broker did not take them.
    """
    regions = sorted({r.endpoint for r in store.ledger.erase_requests(pending_only=True)})
    if not regions:
        return 0
    path = endpoints_path(data_dir)
    if not path.exists():
        raise EndpointError(
            f"no cloud endpoints are configured ({path}): the erase request(s) stay pending; "
            "configure them and run phoneagent cloud clear"
        )
    endpoints = load_endpoints(path)
    with broker_errors(_PENDING):
        for region in regions:
            uploader = Uploader(store, endpoints.for_region(region))
            # A command must come back even if a broker stops answering mid-session.
            asyncio.run(asyncio.wait_for(uploader.drain(confirm_timeout=wait), wait + SLACK_S))
    return len(store.ledger.erase_requests(pending_only=True))
