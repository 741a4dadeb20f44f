"""Two Bumble virtual controllers on one LocalLink, handed to the guest kernel over /dev/vhci.

Runs inside the BlueZ VM (guest-run starts it before bluetoothd): the first becomes hci0
(the watch), the second hci1 (the agent). Chosen over btvirt because btvirt loses
advertising reports and races connection setup on a loaded 2-core host (docs/bluez.md).
An active scan gets the scan response the advertiser set (``ScanResponseController``):
BlueZ puts a watch's name there.
"""

from __future__ import annotations

import asyncio
import sys

from bumble import hci
from bumble.controller import Controller
from bumble.core import PhysicalTransport
from bumble.link import LocalLink
from bumble.transport import open_transport

from bumblekit.controller import ScanResponseController

# Distinct public addresses: the kernel connects with them, and a shared one would
# make the link deliver a controller's packets to itself.
ADDRESSES = ("F0:F1:F2:F3:F4:00", "F0:F1:F2:F3:F4:01")


class ConnectionAddressLink(LocalLink):
    """Tags LE ACL data with the address the sender uses on that connection.

    Bumble 0.0.236 tags it with the sender's random address, so a connection the kernel
    made with public addresses would drop every ACL packet at the receiver.
    """

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: PhysicalTransport,
        data: bytes,
    ) -> None:
        connection = sender_controller.le_connections.get(destination_address)
        destination = self.find_le_controller(destination_address)
        if transport != PhysicalTransport.LE or connection is None or destination is None:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        source = connection.self_address
        asyncio.get_running_loop().call_soon(
            destination.on_link_acl_data, source, PhysicalTransport.LE, data
        )


async def main() -> None:
    link = ConnectionAddressLink()
    transports = []
    for index, address in enumerate(ADDRESSES):
        # Opened one after the other so that the kernel numbers them hci0, hci1.
        transport = await open_transport("vhci")
        transports.append(transport)
        controller = ScanResponseController(
            f"hci{index}",
            host_source=transport.source,
            host_sink=transport.sink,
            link=link,
            public_address=address,
        )
        # With extended advertising or LL privacy on offer, Linux waits for an LE *Enhanced*
        # Connection Complete that Bumble never sends: after 4 s it cancels a connection
        # that is already up, and the link is left half-dead (no disconnect, no re-advertising).
        controller.le_features &= ~(
            hci.LeFeatureMask.LE_EXTENDED_ADVERTISING | hci.LeFeatureMask.LL_PRIVACY
        )
    print("controllers: hci0 and hci1 attached", file=sys.stderr, flush=True)
    await asyncio.get_running_loop().create_future()  # until the VM powers off


if __name__ == "__main__":
    asyncio.run(main())
