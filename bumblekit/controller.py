"""Bumble virtual controllers sized like a current LE chip.

Bumble's ``Controller`` reports LE ACL buffers of 27 bytes (the Bluetooth 4.0 minimum),
so its host cuts every 512-byte history notification into 20 HCI fragments, each with
its own packet objects and completion event: most of a loopback backfill's CPU. Chips
with LE Data Length Extension (Bluetooth 4.2 on) take 251-byte fragments, three per
notification. Only the sending side's buffers matter; the loopback link hands the
receiving host whole L2CAP PDUs either way.
"""

from __future__ import annotations

from bumble.controller import Controller
from bumble.link import LocalLink

# The longest LE data channel payload with Data Length Extension.
LE_ACL_DATA_PACKET_LENGTH = 251


def virtual_controller(name: str, link: LocalLink) -> Controller:
    controller = Controller(name, link=link)
    controller.le_acl_data_packet_length = LE_ACL_DATA_PACKET_LENGTH
    return controller
