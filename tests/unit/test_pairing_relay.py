"""The running agent's pairing agent refuses what no ``pair`` command asked for: a watch
(or anything in range) that starts pairing with a background radio gets no passkey."""

from __future__ import annotations

from phoneagent.services.pairing import PairingRelay


async def test_an_idle_relay_refuses_every_pairing_question() -> None:
    relay = PairingRelay(answer_timeout=0.0)
    assert await relay.enter_passkey("F0:5A:6E:00:00:01") is None
    assert await relay.confirm_number("F0:5A:6E:00:00:01", 123456) is False
    assert await relay.enter_passkey("not an address") is None
