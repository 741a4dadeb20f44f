"""The machine's speed, measured in the same run as an absolute figure.

The fleet's milli-cores per pair are CPU seconds, and a CPU second of this shared virtual
machine buys different amounts of work from one session to the next (the same code
measured 1.10-1.24 on one day and 1.37-1.52 on another) and within a session as the
host's other guests come and go. A fixed piece of the fleet's own kind of work, timed
just before and just after the measurement, puts a number on that: two runs' figures
compare once each is divided by its reference time.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from pathlib import Path

from bumble import att, hci

from phoneagent.store import DbKey, Store
from protocol import history
from protocol.metrics import Metric, Sample

# Rounds of each kind of work: together about half a CPU-second on the 2-core machine of
# docs/scaling.md, in the proportions of an agent's second (parse, codec, commit).
PACKETS = 30_000
BATCHES = 9_000
COMMITS = 3_000
_DEVICE = "F0:F1:F2:F3:F4:F5"


def _notification() -> bytes:
    """An HCI ACL packet carrying a 24-byte ATT notification, as a live second arrives."""
    pdu = bytes(att.ATT_Handle_Value_Notification(attribute_handle=0x20, attribute_value=bytes(24)))
    l2cap = len(pdu).to_bytes(2, "little") + (4).to_bytes(2, "little") + pdu
    packet = hci.HCI_AclDataPacket(
        connection_handle=1, pb_flag=2, bc_flag=0, data_total_length=len(l2cap), data=l2cap
    )
    return bytes(packet)


def _once(directory: Path) -> float:
    """CPU seconds of one round of the fixed work."""
    packet = _notification()
    metrics = list(Metric)
    samples = [(1_700_000_000 + i, metrics[i], 100 + i) for i in range(4)]
    with Store.open(directory, DbKey(secrets.token_hex(32))) as store:
        store.add_device(_DEVICE)
        started = time.process_time()
        for _ in range(PACKETS):
            acl = hci.HCI_Packet.from_bytes(packet)
            assert isinstance(acl, hci.HCI_AclDataPacket)
            att.ATT_PDU.from_bytes(acl.data[4:])
        for second in range(BATCHES):
            entries = [
                Sample(second * 4 + i + 1, t + second, m, r) for i, (t, m, r) in enumerate(samples)
            ]
            for batch in history.pack_records(entries, history.MAX_PAYLOAD):
                history.decode_batch(batch)
        for second in range(COMMITS):
            rows = [
                Sample(second * 4 + i + 1, t + second, m, r) for i, (t, m, r) in enumerate(samples)
            ]
            store.store_batch(_DEVICE, rows, durable=False)
        return time.process_time() - started


def reference_cpu_s(rounds: int = 3) -> float:
    """The median CPU seconds of ``rounds`` rounds of the fixed work, each in a fresh store."""
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as root:
        return statistics.median(_once(Path(root) / str(i)) for i in range(rounds))
