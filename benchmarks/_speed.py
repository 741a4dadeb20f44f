"""The machine's speed, measured in the same run as an absolute figure.

The fleet's milli-cores per pair are CPU seconds, and a CPU second of this shared virtual
machine buys different amounts of work from one session to the next (3456da7 measured
1.11-1.14 on one day and 1.22-1.52 on another) and within a session as the host's other
guests come and go. A fixed piece of the fleet's kind of work, timed just
before and just after the measurement, puts a number on that. It runs only the libraries'
code (Bumble's parsing, SQLCipher's commits, the standard library's packing), none of
ours, so that a change to our code does not move the yardstick with the figure.
"""

from __future__ import annotations

import secrets
import statistics
import struct
import tempfile
import time
import zlib
from pathlib import Path

import sqlcipher3
from bumble import att, hci

# Rounds of each kind of work: together about half a CPU-second on the 2-core machine of
# docs/scaling.md, roughly in the proportions of an agent's second.
PACKETS = 30_000
RECORDS = 60_000
COMMITS = 3_000
_RECORD = struct.Struct("<IIBh")  # seq, timestamp, metric, raw: a history record's fields


def _notification() -> bytes:
    """An HCI ACL packet carrying a 24-byte ATT notification, as a live second arrives."""
    pdu = bytes(att.ATT_Handle_Value_Notification(attribute_handle=0x20, attribute_value=bytes(24)))
    l2cap = len(pdu).to_bytes(2, "little") + (4).to_bytes(2, "little") + pdu
    packet = hci.HCI_AclDataPacket(
        connection_handle=1, pb_flag=2, bc_flag=0, data_total_length=len(l2cap), data=l2cap
    )
    return bytes(packet)


def _database(path: Path) -> sqlcipher3.Connection:
    """An encrypted WAL database with a samples table, as an agent's store has."""
    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{secrets.token_hex(32)}'\"")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE samples (device INTEGER, seq INTEGER, metric INTEGER, ts INTEGER,"
        " raw INTEGER, PRIMARY KEY (device, seq)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX by_time ON samples (device, ts)")
    conn.execute("CREATE TABLE cursors (device INTEGER PRIMARY KEY, next INTEGER)")
    return conn


def _once(path: Path) -> float:
    """CPU seconds of one round of the fixed work, its database at ``path``."""
    packet = _notification()
    conn = _database(path)
    try:
        started = time.process_time()
        for _ in range(PACKETS):
            acl = hci.HCI_Packet.from_bytes(packet)
            assert isinstance(acl, hci.HCI_AclDataPacket)
            att.ATT_PDU.from_bytes(acl.data[4:])
        for seq in range(RECORDS):
            record = _RECORD.pack(seq, 1_700_000_000 + seq, seq % 4, seq % 200)
            _RECORD.unpack(record)
            zlib.crc32(record)
        for second in range(COMMITS):
            rows = [(1, second * 4 + i, i, 1_700_000_000 + second, 100 + i) for i in range(4)]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("INSERT OR REPLACE INTO cursors VALUES (1, ?)", (second * 4 + 4,))
            conn.execute("COMMIT")
        return time.process_time() - started
    finally:
        conn.close()


def reference_cpu_s(rounds: int = 3) -> float:
    """The median CPU seconds of ``rounds`` rounds of the fixed work, each in a fresh
    database: the machine's speed, to divide a figure by when comparing runs of the same
    code on different days."""
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as root:
        return statistics.median(_once(Path(root) / f"{i}.db") for i in range(rounds))
