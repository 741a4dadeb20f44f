"""Per-minute records from InfiniTime's live values (``phoneagent.sync.minutes``)."""

from __future__ import annotations

from phoneagent.sync.minutes import MinuteAggregator, StepDeltas, minute_seq
from protocol.metrics import Metric, Sample

T0 = 1_790_000_000 - 1_790_000_000 % 60  # the start of a minute


def test_step_deltas_survive_the_midnight_reset_and_a_reboot() -> None:
    steps = StepDeltas()
    # baseline, walking, midnight (the count restarts at 0), a reboot mid-morning
    readings = [5000, 5010, 5025, 3, 40, 2, 2, 9]
    assert [steps.delta(c) for c in readings] == [0, 10, 15, 3, 37, 2, 0, 7]


def test_steps_and_mean_heart_rate_per_minute() -> None:
    minutes = MinuteAggregator()
    assert minutes.step_count(100, T0 + 1) == []  # the baseline: no steps counted
    assert minutes.heart_rate(60, T0 + 2) == []
    assert minutes.heart_rate(0, T0 + 3) == []  # "no reading" does not lower the mean
    assert minutes.heart_rate(65, T0 + 4) == []
    assert minutes.step_count(130, T0 + 30) == []
    first = T0 // 60
    assert minutes.step_count(2, T0 + 61) == [  # midnight between: 2 steps since
        Sample(minute_seq(first, Metric.HEART_RATE), T0, Metric.HEART_RATE, 62),
        Sample(minute_seq(first, Metric.STEPS), T0, Metric.STEPS, 30),
    ]
    assert minutes.flush() == [
        Sample(minute_seq(first + 1, Metric.STEPS), T0 + 60, Metric.STEPS, 2)
    ]
    assert minutes.flush() == []


def test_a_minute_is_due_once_the_clock_is_past_it_without_a_later_value() -> None:
    """A wearer at rest: InfiniTime notifies steps only when they change."""
    minutes = MinuteAggregator()
    assert minutes.due(T0) == []  # nothing heard yet
    minutes.step_count(100, T0 + 1)
    minutes.heart_rate(70, T0 + 2)
    assert minutes.due(T0 + 59) == []  # still in its minute
    first = T0 // 60
    assert minutes.due(T0 + 60) == [
        Sample(minute_seq(first, Metric.HEART_RATE), T0, Metric.HEART_RATE, 70)
    ]
    assert minutes.due(T0 + 600) == [] and minutes.flush() == []  # stored once
    minutes.step_count(105, T0 + 601)  # the baseline holds across the quiet minutes
    assert minutes.flush() == [
        Sample(minute_seq(first + 10, Metric.STEPS), T0 + 600, Metric.STEPS, 5)
    ]


def test_a_new_connection_starts_from_a_new_baseline() -> None:
    """Steps taken while disconnected are not placed in the first minute heard after."""
    minutes = MinuteAggregator()
    minutes.step_count(100, T0)
    minutes.step_count(110, T0 + 10)
    assert [s.raw for s in minutes.flush()] == [10]
    again = MinuteAggregator()
    again.step_count(900, T0 + 600)
    assert again.flush() == []


def test_seqs_order_minutes_and_opted_out_metrics_are_dropped() -> None:
    assert minute_seq(10, Metric.STEPS) < minute_seq(11, Metric.HEART_RATE)
    minutes = MinuteAggregator(opted_out=frozenset({Metric.HEART_RATE}))
    minutes.heart_rate(70, T0)
    minutes.step_count(1, T0)
    minutes.step_count(4, T0 + 5)
    assert [s.metric for s in minutes.flush()] == [Metric.STEPS]
