"""A virtual controller reports the ACL packets completed in one loop turn as one Number
Of Completed Packets event, counts added per connection, and never after a packet it
produced later (bumblekit/controller.py)."""

from __future__ import annotations

import asyncio

from bumble import hci

from bumblekit.controller import virtual_controller
from watchsim.peripheral.bumble_adapter import new_link


class Received:
    """The controller's host side, as a transport sink sees it: HCI packets as bytes."""

    def __init__(self) -> None:
        self.packets: list[hci.HCI_Packet] = []

    def on_packet(self, packet: bytes) -> None:
        self.packets.append(hci.HCI_Packet.from_bytes(packet))


def _completed(handles: list[int], counts: list[int]) -> hci.HCI_Number_Of_Completed_Packets_Event:
    return hci.HCI_Number_Of_Completed_Packets_Event(
        connection_handles=handles, num_completed_packets=counts
    )


async def _turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)  # the ends of loop turns, not a wait for time


async def test_completions_of_one_turn_go_out_as_one_event_before_what_follows() -> None:
    controller = virtual_controller("phone", link=new_link())
    host = Received()
    controller.host = host  # what the air gives it: a sink
    controller.send_hci_packet(_completed([1], [1]))
    controller.send_hci_packet(_completed([1], [2]))
    controller.send_hci_packet(_completed([2], [1]))
    gone = hci.HCI_Disconnection_Complete_Event(
        status=hci.HCI_SUCCESS,
        connection_handle=2,
        reason=hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR,
    )
    controller.send_hci_packet(gone)  # the pending completions go out first
    controller.send_hci_packet(_completed([1], [1]))
    await _turns(3)
    first, second, third = host.packets
    assert isinstance(first, hci.HCI_Number_Of_Completed_Packets_Event)
    assert dict(zip(first.connection_handles, first.num_completed_packets, strict=True)) == {
        1: 3,
        2: 1,
    }
    assert isinstance(second, hci.HCI_Disconnection_Complete_Event)
    assert second.connection_handle == 2
    assert isinstance(third, hci.HCI_Number_Of_Completed_Packets_Event)
    assert (list(third.connection_handles), list(third.num_completed_packets)) == ([1], [1])


async def test_a_turn_without_completions_sends_none() -> None:
    controller = virtual_controller("phone", link=new_link())
    host = Received()
    controller.host = host
    controller.send_hci_packet(_completed([1], [1]))
    await _turns(3)
    await _turns(3)
    assert len(host.packets) == 1
