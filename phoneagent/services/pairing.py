"""Forgetting a watch: its bond, and unless kept, the device and its data (``unpair``)."""

from __future__ import annotations

from phoneagent.errors import UnreachableError
from phoneagent.privacy import delete_data
from phoneagent.store import Store
from phoneagent.store.ledger import EraseRequest
from protocol.address import Address


class NotPairedError(UnreachableError):
    """Neither a device record nor a bond for the address."""


def unpair(store: Store, address: Address, *, keep_data: bool) -> tuple[EraseRequest, ...]:
    """Forget ``address``; returns the cloud erase requests its data's deletion recorded."""
    if store.get_device(address) is None and address not in store.list_bonds():
        raise NotPairedError(f"{address} is not paired.")
    store.delete_bond(address)
    if keep_data:
        return ()
    # The same deletion as ``delete --device``: cloud copies get an erase request too.
    return delete_data(store, device=address).erase_requests
