"""Repeated Attempts (Core Vol 3 Part H 2.3.6): the wait after failed pairings, by
address, on an explicit clock."""

from __future__ import annotations

from watchsim.peripheral.bumble_pairing import Backoff

A, B = "C2:11:22:33:44:55", "D1:00:00:00:00:01"


def test_each_failure_doubles_the_wait_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1.0, max_s=4.0)
    now = 100.0
    waits = []
    for _ in range(5):
        backoff.failed(A, now)
        wait = 0.0
        while backoff.blocked(A, now + wait):
            wait += 0.5
        waits.append(wait)
        now += wait
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert not backoff.blocked(B, now)


def test_success_or_a_long_quiet_spell_starts_over() -> None:
    backoff = Backoff(base_s=1.0, max_s=8.0)
    for t in (0.0, 1.0, 3.0):
        backoff.failed(A, t)
    assert backoff.blocked(A, 6.9)
    backoff.succeeded(A)
    assert not backoff.blocked(A, 6.9)
    for t in (10.0, 11.0):
        backoff.failed(A, t)
    # Refused until 13, then quiet for longer than the cap: the next failure waits 1 s.
    backoff.failed(A, 13.0 + 8.1)
    assert backoff.blocked(A, 21.5)
    assert not backoff.blocked(A, 22.2)


def test_it_remembers_a_bounded_number_of_addresses() -> None:
    backoff = Backoff(capacity=3)
    addresses = [f"D1:00:00:00:00:{i:02X}" for i in range(10)]
    for address in addresses:
        backoff.failed(address, 0.0)
    assert len(backoff) == 3
    assert [backoff.blocked(a, 0.5) for a in addresses[-4:]] == [False, True, True, True]
