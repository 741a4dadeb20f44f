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

Bumble's controller answers an active scan with the advertising data twice (as the
advertisement and as its scan response). Here a scan response the advertiser set is
reported as one, so a watch may put its name there, as InfiniTime does (and BlueZ does
with every name): ``ScanResponseController`` alone, which the BlueZ VM's controllers are.

Bumble's controller reports each ACL packet the host sent as completed in an event of
its own: three Number Of Completed Packets events per history notification, each built,
serialised and sent by the air and parsed by the watch's host (the air's largest cost
after relaying the data). Here the completions reported in one turn of the event loop
go out as one event with the counts added per connection, as chips batch them (Core
Vol 4 Part E 7.7.19), and any other packet first sends those pending, so the host sees
everything in the order the controller produced it.
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
# LE Scan Type of an active scan (Core Vol 4 Part E 7.8.10): it asks for scan responses.
_ACTIVE_SCAN = 0x01
# Advertising event properties (Core Vol 4 Part E 7.8.53): scannable, legacy PDUs.
_SCANNABLE_LEGACY = 0x02 | 0x10


class ScanResponseController(Controller):
    """Bumble's controller, except that an active scan gets the scan response the
    advertiser set as one; also the BlueZ VM's (``scripts/bluez-vm/controllers.py``)."""

    def reports(self, advertiser: hci.Address) -> bool:
        """Whether a scan now reports ``advertiser`` to the host."""
        return bool(self.le_scan_enable)

    def on_advertising_pdu(self, pdu: ll.AdvInd | ll.AdvExtInd) -> None:
        if self.reports(pdu.advertiser_address):
            response = self._scan_response(pdu)
            if response is None:
                super().on_advertising_pdu(pdu)  # reports, and connects a pending connect
                return
            self._report(pdu, response)
        # A connect pending for this advertiser (a central that scans while it connects,
        # as the agent's radio does) completes on it, scan response or not.
        pending = self.pending_le_connection
        if pending is not None and pending.peer_address == pdu.advertiser_address:
            self.create_le_connection(pdu.advertiser_address)

    def _scan_response(self, pdu: ll.AdvInd | ll.AdvExtInd) -> bytes | None:
        """The scan response an active scan gets for a scannable legacy advertisement
        (an AdvExtInd from a set that uses legacy PDUs is one), when the advertiser set
        one; None: Bumble's own report, which repeats the advertising data."""
        if self.le_scan_type != _ACTIVE_SCAN:
            return None
        advertiser = self.link.find_le_controller(pdu.advertiser_address)
        if advertiser is None:
            return None
        if isinstance(pdu, ll.AdvInd):
            return advertiser.le_legacy_advertiser.scan_response_data or None
        for adv_set in advertiser.advertising_sets.values():
            properties = (
                adv_set.parameters.advertising_event_properties if adv_set.parameters else 0
            )
            if (
                adv_set.enabled
                and adv_set.address == pdu.advertiser_address
                and properties & _SCANNABLE_LEGACY == _SCANNABLE_LEGACY
            ):
                return bytes(adv_set.scan_response_data) or None
        return None

    def _report(self, pdu: ll.AdvInd | ll.AdvExtInd, response: bytes) -> None:
        """The advertisement, then its scan response, as a chip's active scan reports them."""
        address = pdu.advertiser_address
        if self.le_features & hci.LeFeatureMask.LE_EXTENDED_ADVERTISING:
            kinds = hci.HCI_LE_Extended_Advertising_Report_Event.EventType
            adv_ind = (
                kinds.CONNECTABLE_ADVERTISING
                | kinds.SCANNABLE_ADVERTISING
                | kinds.LEGACY_ADVERTISING_PDU_USED
            )
            for kind, data in ((adv_ind, pdu.data), (adv_ind | kinds.SCAN_RESPONSE, response)):
                report = hci.HCI_LE_Extended_Advertising_Report_Event.Report(
                    event_type=kind,
                    address_type=address.address_type,
                    address=address,
                    primary_phy=hci.Phy.LE_1M,
                    secondary_phy=0,
                    advertising_sid=0xFF,
                    tx_power=0x7F,
                    rssi=-50,
                    periodic_advertising_interval=0,
                    direct_address_type=0,
                    direct_address=hci.Address.ANY,
                    data=data,
                )
                self.send_hci_packet(hci.HCI_LE_Extended_Advertising_Report_Event([report]))
            return
        legacy = hci.HCI_LE_Advertising_Report_Event.EventType
        for event_type, data in ((legacy.ADV_IND, pdu.data), (legacy.SCAN_RSP, response)):
            legacy_report = hci.HCI_LE_Advertising_Report_Event.Report(
                event_type=event_type,
                address_type=address.address_type,
                address=address,
                data=data,
                rssi=-50,
            )
            self.send_hci_packet(hci.HCI_LE_Advertising_Report_Event([legacy_report]))

    def on_hci_le_set_extended_scan_parameters_command(
        self, command: hci.HCI_LE_Set_Extended_Scan_Parameters_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Bumble's keeps no scan type for an extended scan; kept here (first PHY's)."""
        if command.scan_types:
            self.le_scan_type = command.scan_types[0]
        return super().on_hci_le_set_extended_scan_parameters_command(command)


class VirtualController(ScanResponseController):
    def __init__(self, name: str, link: LocalLink) -> None:
        super().__init__(name, link=link)
        self.le_acl_data_packet_length = LE_ACL_DATA_PACKET_LENGTH
        self.filter_accept_list_size = FILTER_ACCEPT_LIST_SIZE
        self.filter_accept_list: set[hci.Address] = set()
        self._completed: dict[int, int] = {}  # connection handle -> packets, not yet sent

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Completions wait for the end of the loop turn (see the module docstring)."""
        if isinstance(packet, hci.HCI_Number_Of_Completed_Packets_Event):
            if not self._completed:
                asyncio.get_running_loop().call_soon(self._send_completed)
            completed = self._completed
            for handle, count in zip(
                packet.connection_handles, packet.num_completed_packets, strict=True
            ):
                completed[handle] = completed.get(handle, 0) + count
            return
        self._send_completed()
        super().send_hci_packet(packet)

    def _send_completed(self) -> None:
        if not self._completed:
            return
        completed, self._completed = self._completed, {}
        super().send_hci_packet(
            hci.HCI_Number_Of_Completed_Packets_Event(
                connection_handles=list(completed), num_completed_packets=list(completed.values())
            )
        )

    def reports(self, advertiser: hci.Address) -> bool:
        return super().reports(advertiser) and (
            self.le_scanning_filter_policy not in _FILTERED_POLICIES
            or advertiser in self.filter_accept_list
        )

    def hears(self, advertiser: hci.Address) -> bool:
        """Whether an advertisement from ``advertiser`` can matter to this controller."""
        pending = self.pending_le_connection
        return self.reports(advertiser) or (
            pending is not None and pending.peer_address == advertiser
        )

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
