"""New Alert as the agent writes it to an InfiniTime watch (``alert_bytes``)."""

from __future__ import annotations

from phoneagent.sync.infinitime_client import alert_bytes
from protocol import infinitime as it


def test_header_then_nul_separated_parts() -> None:
    assert alert_bytes(it.AlertCategory.CALL, "Mum") == b"\x03\x01\x00Mum"
    value = alert_bytes(it.AlertCategory.INSTANT_MESSAGE, "Ann", "Hi")
    assert value == b"\x09\x01\x00Ann\x00Hi"
    assert it.NewAlert.decode(value) == it.NewAlert(0x09, 1, b"Ann\x00Hi")


def test_cut_to_what_infinitime_keeps_at_a_character_boundary() -> None:
    value = alert_bytes(it.AlertCategory.SIMPLE_ALERT, "Zoë", "é" * 60)
    message = value[it.ALERT_HEADER_SIZE :]
    assert len(message) == it.ALERT_MESSAGE_MAX - 1  # a 2-byte "é" did not fit whole
    assert message.decode() == "Zoë\x00" + "é" * 47
