"""A request given up while its answer is on the way: the answer goes nowhere, with no
"Exception in callback" traceback in the agent's log (each ``phoneagent run`` that
stopped mid-request wrote one)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bumble import att

from phoneagent.transport.bonds import MemoryBondStore
from phoneagent.transport.radio import BumbleRadio
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import start_loopback_watch

WAIT = 10.0


async def test_the_answer_to_a_cancelled_request_is_dropped(tmp_path: Path) -> None:
    link = new_link()
    watch = await start_loopback_watch(link, tmp_path / "watch")
    radio = await BumbleRadio.on_link(link, bonds=MemoryBondStore())
    try:
        connection = await radio.connect(watch.address, within=WAIT)
        client = connection.gatt_client
        # As Bumble leaves it when the waiting task was cancelled and has not run since.
        client.pending_request = att.ATT_Read_Request(attribute_handle=1)
        client.pending_response = asyncio.get_running_loop().create_future()
        client.pending_response.cancel()

        client.on_gatt_pdu(att.ATT_Read_Response(attribute_value=b"\x01"))

        client.pending_request = client.pending_response = None
        assert (await client.request_mtu(att.ATT_DEFAULT_MTU)) >= att.ATT_DEFAULT_MTU
    finally:
        await radio.close()
        await watch.stop()
