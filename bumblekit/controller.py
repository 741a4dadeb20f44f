"""Bumble virtual controllers sized and filtering like a current LE chip.

Bumble's ``Controller`` reports LE ACL buffers of 27 bytes (the Bluetooth 4.0 minimum),
so its host cuts every 512-byte history notification into 20 HCI fragments, each with
its own packet objects and completion event: most of a loopback backfill's CPU. Chips
with LE Data Length Extension (Bluetooth 4.2 on) take 251-byte fragments, three per
notification. Only the sending side's buffers matter; the loopback link hands the
receiving host whole L2CAP PDUs either way.

Bumble's controller also accepts the Filter Accept List commands and then ignores them,
so a host scanning for its one bonded watch still gets two reports for every
advertisement on the link. In a fleet that is advertisers x scanners reports a second
(10,000 a second for 100 pairs, enough to starve both processes while the agents
connect). Here the list is kept and a scan with a filtering policy reports only the
devices on it, as a chip does.
"""

from __future__ import annotations

from bumble import hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink

# The longest LE data channel payload with Data Length Extension.
LE_ACL_DATA_PACKET_LENGTH = 251
# Scanning filter policies (Core Vol 4 Part E 7.8.10) that apply the Filter Accept List.
_FILTERED_POLICIES = frozenset({0x01, 0x03})


class VirtualController(Controller):
    def __init__(self, name: str, link: LocalLink) -> None:
        super().__init__(name, link=link)
        self.le_acl_data_packet_length = LE_ACL_DATA_PACKET_LENGTH
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
