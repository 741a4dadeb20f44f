"""Live values: nothing is encoded for a characteristic nobody listens to, yet what
the watch tracks between pushes (contact, the settled temperature) stays right."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from protocol import uuids
from protocol.activity import ActivitySummary
from protocol.metrics import Metric
from protocol.thermometer import TemperatureMeasurement
from watchsim.app.live import SETTLED_SAMPLES, LiveValues, activity_summary, local_datetime
from watchsim.model import Measurement, WatchState
from watchsim.model.scenario import Activity

T0 = 1_780_000_000
EVERY_LIVE_VALUE = {
    uuids.HEART_RATE_MEASUREMENT,
    uuids.PLX_CONTINUOUS_MEASUREMENT,
    uuids.PLX_SPOT_CHECK_MEASUREMENT,
    uuids.INTERMEDIATE_TEMPERATURE,
    uuids.TEMPERATURE_MEASUREMENT,
}


def state(t: int) -> WatchState:
    return WatchState(
        timestamp=t,
        activity=Activity.REST,
        on_wrist=True,
        charging=False,
        powered=True,
        heart_rate=62,
        rr_intervals_ms=(960,),
        steps_today=1200,
        distance_m_today=900.0,
        energy_kj_today=800.0,
        battery_percent=80,
        last={},
    )


def measured(t: int, temperature_raw: int) -> list[Measurement]:
    return [
        Measurement(t, Metric.HEART_RATE, 62),
        Measurement(t, Metric.SPO2, 975),
        Measurement(t, Metric.SKIN_TEMPERATURE, temperature_raw),
    ]


def test_values_nobody_listens_to_are_not_pushed_but_readable_ones_are() -> None:
    live = LiveValues()
    pushes = live.step(state(T0), measured(T0, 3300), 0, lambda _uuid: False)
    assert {p.uuid for p in pushes} == {uuids.BATTERY_LEVEL, uuids.ACTIVITY_SUMMARY}
    everything = live.step(state(T0 + 1), measured(T0 + 1, 3300), 0, lambda _uuid: True)
    assert EVERY_LIVE_VALUE - {uuids.TEMPERATURE_MEASUREMENT} <= {p.uuid for p in everything}


def test_the_settled_temperature_counts_samples_taken_while_nobody_listened() -> None:
    live = LiveValues()
    raws = [3300 + 10 * i for i in range(SETTLED_SAMPLES)]
    for i, raw in enumerate(raws[:-1]):
        quiet = live.step(state(T0 + i), measured(T0 + i, raw), 0, lambda _uuid: False)
        assert not {p.uuid for p in quiet} & EVERY_LIVE_VALUE
    last = T0 + len(raws)
    pushes = live.step(
        state(last), measured(last, raws[-1]), 0, lambda uuid: uuid == uuids.TEMPERATURE_MEASUREMENT
    )
    (settled,) = [p for p in pushes if p.uuid == uuids.TEMPERATURE_MEASUREMENT]
    value = TemperatureMeasurement.decode(settled.value).value
    assert (
        Decimal(str(value))
        == Decimal(round(sum(raws) / SETTLED_SAMPLES)) / Metric.SKIN_TEMPERATURE.scale
    )


def test_the_activity_summary_goes_out_when_a_field_or_the_local_day_changes() -> None:
    """Made only on a change, it still follows every field and the local midnight."""
    live = LiveValues()
    offset = 3 * 3600  # the local day starts at 21:00 UTC
    midnight = (T0 + offset) // 86_400 * 86_400 + 86_400 - offset

    def summaries(at: WatchState) -> list[bytes]:
        pushes = live.step(at, [], offset, lambda _uuid: False)
        return [p.value for p in pushes if p.uuid == uuids.ACTIVITY_SUMMARY]

    first = state(midnight - 3)
    assert summaries(first) == [activity_summary(first, offset)]
    assert summaries(replace(first, timestamp=midnight - 2)) == []
    walked = replace(first, timestamp=midnight - 1, steps_today=1201)
    assert summaries(walked) == [activity_summary(walked, offset)]
    next_day = replace(walked, timestamp=midnight)
    (sent,) = summaries(next_day)
    assert ActivitySummary.decode(sent).day == local_datetime(midnight, offset).date()
    assert local_datetime(midnight - 1, offset).date() != local_datetime(midnight, offset).date()
    farther = replace(next_day, distance_m_today=905.0)
    assert summaries(farther) == [activity_summary(farther, offset)]
    burnt = replace(farther, energy_kj_today=806.0)  # one more kcal
    assert summaries(burnt) == [activity_summary(burnt, offset)]
