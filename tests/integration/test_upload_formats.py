"""Upload wire format, endpoint configuration and the cloud CLI, without a broker."""

from __future__ import annotations

import json
import random
import struct
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneagent.cli import main
from phoneagent.privacy.account import ProfileInput, create_account
from phoneagent.privacy.consent import CLOUD_SYNC, is_granted
from phoneagent.privacy.erase import request_cloud_erasure
from phoneagent.store import Store, create_key_file
from phoneagent.upload.endpoints import (
    EndpointError,
    PlaintextRefusedError,
    load_endpoints,
    parse_endpoints,
)
from phoneagent.upload.payload import (
    SAMPLE_SIZE,
    EraseMessage,
    PayloadError,
    Topics,
    decode_batch,
    encode_batch,
    encode_batches,
    encode_packed,
    parse_topic,
)
from protocol.metrics import Metric
from protocol.settings import Sex


def test_batch_round_trip_is_bit_exact() -> None:
    rng = random.Random(7)
    rows = sorted(
        {
            (
                rng.randrange(10**12),
                rng.choice(list(Metric)).value,
                1_700_000_000 + rng.randrange(-5000, 5000),
                rng.randrange(-(2**31), 2**31),
            )
            for _ in range(100)
        }
    )
    rows = [(1_000_000 + i * 3, m, ts, raw) for i, (_, m, ts, raw) in enumerate(rows)]
    data = encode_batch(0xDEADBEEF, rows)
    assert len(data) == 29 + 100 * SAMPLE_SIZE
    batch = decode_batch(data)
    assert batch.batch_id == 0xDEADBEEF
    assert [(s.seq, int(s.metric), s.timestamp, s.raw) for s in batch.samples] == rows


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.integers(-(2**31), 2**31 - 1),  # spans up to 2**32 - 1 s, as a watch's u32
            st.sampled_from(list(Metric)),
            st.integers(-(2**31), 2**31 - 1),
        ),
        min_size=1,
        max_size=300,
        unique_by=lambda row: row[0],
    ),
    st.integers(1, 128),
    st.integers(-(2**40), 2**40),
    st.integers(-(2**40), 2**40),
)
def test_packed_rows_encode_as_the_columns_do(
    rows: list[tuple[int, int, Metric, int]], size: int, base_seq: int, base_ts: int
) -> None:
    """The store's packing (big-endian, ts and raw biased by 2**31), moved into batches,
    decodes to the same samples as ``encode_batches`` of the columns."""
    rows.sort()
    packed = b"".join(
        struct.pack(">IIBI", seq, ts + 2**31, metric, raw + 2**31) for seq, ts, metric, raw in rows
    )
    ids = list(range(-(-len(rows) // size)))
    samples = [(base_seq + seq, base_ts + ts, metric, raw) for seq, ts, metric, raw in rows]
    columns = [list(column) for column in zip(*samples, strict=True)]
    both = (
        encode_packed(ids, size, base_seq, base_ts, packed),
        encode_batches(ids, size, columns[0], columns[2], columns[1], columns[3]),
    )
    decoded = [
        [(s.seq, s.timestamp, s.metric, s.raw) for b in batches for s in decode_batch(b).samples]
        for batches in both
    ]
    assert decoded[0] == decoded[1] == samples
    assert [len(b) for b in both[0]] == [len(b) for b in both[1]]
    # Batch by batch (a live upload's one batch is packed in one go): the same bytes.
    seqs, stamps, metrics, raws = columns
    one_by_one = [
        encode_batches(
            [i], size, *(c[start : start + size] for c in (seqs, metrics, stamps, raws))
        )[0]
        for i, start in zip(ids, range(0, len(rows), size), strict=True)
    ]
    assert both[1] == one_by_one


def test_packed_rows_must_be_whole_samples() -> None:
    with pytest.raises(PayloadError, match="not whole 13-byte samples"):
        encode_packed([1], 100, 0, 0, bytes(SAMPLE_SIZE + 1))


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(PayloadError, match="differ in length"):
        encode_batches([1], 4, [1, 2], [1, 1], [0, 0], [5])
    with pytest.raises(PayloadError, match="differ in length"):
        encode_batches([1], 2, [1, 2], [1, 1], [0, 0, 0], [5, 5])


def test_malformed_batches_are_rejected() -> None:
    data = encode_batch(1, [(5, 1, 100, 60)])
    with pytest.raises(PayloadError):
        decode_batch(data[:-1])
    with pytest.raises(PayloadError):
        decode_batch(b"XX" + data[2:])
    with pytest.raises(PayloadError):
        encode_batch(1, [])


def test_erase_message_and_topics_round_trip() -> None:
    erase = EraseMessage(3, "data", "dev", "heart_rate", 10, 20, {"dev": 41, "gone": None})
    assert EraseMessage.decode(erase.encode()) == erase
    with pytest.raises(PayloadError):
        EraseMessage.decode(erase.encode().replace(b'"data"', b'"everything"'))
    topics = Topics("watchsync", "eu", "u1")
    parsed, rest = parse_topic("watchsync", topics.erase_confirmed(3))
    assert (parsed, rest) == (topics, ["erase", "3", "confirmed"])


def test_endpoints_file_and_plaintext_rule__PR_TLS(tmp_path: Path) -> None:
    (tmp_path / "eu.pass").write_text("pw\n")
    (tmp_path / "cloud.toml").write_text(
        'prefix = "ws"\n[regions.eu]\nhost = "mqtt.example"\nca_file = "ca.pem"\n'
        'username = "agent"\npassword_file = "eu.pass"\n'
        '[regions.us]\nhost = "10.0.0.5"\ntls = false\n'
    )
    endpoints = load_endpoints(tmp_path / "cloud.toml")
    eu = endpoints.for_region("eu")
    assert (eu.port, eu.tls, eu.password, eu.ca_file) == (8883, True, "pw", tmp_path / "ca.pem")
    assert "pw" not in repr(eu)
    with pytest.raises(PlaintextRefusedError):
        endpoints.for_region("us").check_transport()
    with pytest.raises(EndpointError, match="region 'cn'"):
        endpoints.for_region("cn")
    with pytest.raises(EndpointError, match=r"x \[regions\.eu\]: .*unknown field `tls_off`"):
        parse_endpoints({"regions": {"eu": {"host": "h", "tls_off": True}}}, "x", tmp_path)


async def test_endpoint_mqtt_version_from_the_file(tmp_path: Path) -> None:
    """MQTT 5 unless the region says 3.1.1 (a NATS or RabbitMQ cluster); nothing else."""
    regions = {"eu": {"host": "h", "mqtt": "3.1.1"}, "us": {"host": "h"}}
    endpoints = parse_endpoints({"regions": regions}, "x", tmp_path)
    assert (endpoints.for_region("eu").mqtt, endpoints.for_region("us").mqtt) == ("3.1.1", "5")
    assert endpoints.for_region("eu").client()._client.protocol == 4  # paho's MQTTv311
    assert endpoints.for_region("us").client()._client.protocol == 5
    with pytest.raises(EndpointError, match=r"x \[regions\.eu\]: .*mqtt"):
        parse_endpoints({"regions": {"eu": {"host": "h", "mqtt": "3.1"}}}, "x", tmp_path)


def test_cloud_cli_enable_disable_status__PR_CLOUD__PR_RETAIN(tmp_path: Path) -> None:
    data, key_file = tmp_path / "data", tmp_path / "key"
    key = create_key_file(key_file)
    with Store.open(data, key) as store:
        create_account(store, ProfileInput("eu", date(1990, 1, 1), Sex.MALE, 180, 800))
    runner = CliRunner()
    base = ["--data-dir", str(data), "--key-file", str(key_file), "cloud"]
    assert runner.invoke(main, [*base, "enable"]).exit_code == 0
    with Store.open(data, key) as store:
        assert is_granted(store, CLOUD_SYNC)
        (request,) = request_cloud_erasure(store, "data")
    assert runner.invoke(main, [*base, "disable"]).exit_code == 0
    status = runner.invoke(main, [*base, "status", "--json"])
    assert status.exit_code == 0, status.output
    (row,) = json.loads(status.output)
    assert row["id"] == request.id and row["sent"] is None
    assert row["deadline"] == datetime.fromtimestamp(request.deadline_at, UTC).isoformat()
    with Store.open(data, key) as store:
        assert not is_granted(store, CLOUD_SYNC)
