"""Bumble virtual controllers sized and filtering like a current LE chip.

Bumble's ``Controller`` reports LE ACL buffers of 27 bytes (the Bluetooth 4.0 minimum),
so its host cuts every 512-byte history notification into 20 HCI fragments, each with
its own packet objects and completion event: most of a loopback backfill's CPU. Chips
with LE Data Length Extension (Bluetooth 4.2 on) take 251-byte fragments, three per
notification. Only the sending side's buffers matter; the loopback link hands the
receiving host whole L2CAP PDUs either way.

Bumble's controller answers LE Create Connection Cancel and then keeps the connection
pending: the host gave up, yet the next advertisement from that peer completes the
connection, which the host no longer expects (Bumble asserts on it) and the peer counts
as connected to a phone that never uses it. Here the cancel ends the pending connection
with the LE Connection Complete (Unknown Connection Identifier) a chip sends
(Core Vol 4 Part E 7.8.13), so a connect that timed out is really gone.

Bumble's controller also accepts the Filter Accept List commands and then ignores them,
so a host scanning for its one bonded watch still gets two reports for every
advertisement on the link. In a fleet that is advertisers x scanners reports a second
(10,000 a second for 100 pairs, enough to starve both processes while the agents
connect). Here the list is kept and a scan with a filtering policy reports only the
devices on it, as a chip does.
"""

from __future__ import annotations

import asyncio

from bumble import hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink

# The longest LE data channel payload with Data Length Extension.
LE_ACL_DATA_PACKET_LENGTH = 251
# Entries in the Filter Accept List, a phone chip's, not Bumble's 8 (four watches, for a
# central that adds each under a random and a public address): 64 watches. Sizes vary
# from a few entries (embedded chips) to well over a hundred, and a chip may shrink its
# list at any time (Core Vol 4 Part E 7.8.14), so the host copes with a full one too. A
# test plays a small chip by changing this.
FILTER_ACCEPT_LIST_SIZE = 128
# Scanning filter policies (Core Vol 4 Part E 7.8.10) that apply the Filter Accept List.
_FILTERED_POLICIES = frozenset({0x01, 0x03})


class VirtualController(Controller):
    def __init__(self, name: str, link: LocalLink) -> None:
        super().__init__(name, link=link)
        self.le_acl_data_packet_length = LE_ACL_DATA_PACKET_LENGTH
        self.filter_accept_list_size = FILTER_ACCEPT_LIST_SIZE
        self.filter_accept_list: set[hci.Address] = set()

    def reports(self, advertiser: hci.Address) -> bool:
        """Whether a scan now reports ``advertiser`` to the host."""
        return bool(self.le_scan_enable) and (
            self.le_scanning_filter_policy not in _FILTERED_POLICIES
            or advertiser in self.filter_accept_list
        )

    def hears(self, advertiser: hci.Address) -> bool:
        """Whether an advertisement from ``advertiser`` can matter to this controller."""
        pending = self.pending_le_connection
        return self.reports(advertiser) or (
            pending is not None and pending.peer_address == advertiser
        )

    def on_advertising_pdu(self, pdu: ll.AdvInd | ll.AdvExtInd) -> None:
        if self.reports(pdu.advertiser_address):
            super().on_advertising_pdu(pdu)
            return
        pending = self.pending_le_connection
        if pending is not None and pending.peer_address == pdu.advertiser_address:
            self.create_le_connection(pdu.advertiser_address)

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        # After the command's own Command Complete, as on a chip.
        asyncio.get_running_loop().call_soon(
            self.send_hci_packet,
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address.address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            ),
        )
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_le_clear_filter_accept_list_command(
        self, _command: hci.HCI_LE_Clear_Filter_Accept_List_Command
    ) -> hci.HCI_StatusReturnParameters:
        self.filter_accept_list.clear()
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_le_add_device_to_filter_accept_list_command(
        self, command: hci.HCI_LE_Add_Device_To_Filter_Accept_List_Command
    ) -> hci.HCI_StatusReturnParameters:
        if len(self.filter_accept_list) >= self.filter_accept_list_size:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.MEMORY_CAPACITY_EXCEEDED_ERROR)
        self.filter_accept_list.add(command.address)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_le_remove_device_from_filter_accept_list_command(
        self, command: hci.HCI_LE_Remove_Device_From_Filter_Accept_List_Command
    ) -> hci.HCI_StatusReturnParameters:
        self.filter_accept_list.discard(command.address)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


def virtual_controller(name: str, link: LocalLink) -> VirtualController:
    return VirtualController(name, link)
