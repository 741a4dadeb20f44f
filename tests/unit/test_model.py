"""Physiology model properties, checked over many seeds and wearers."""

from __future__ import annotations

from collections import defaultdict
from statistics import fmean, pstdev

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.metrics import Metric
from protocol.settings import Sex
from watchsim.model import (
    Activity,
    EventKind,
    Measurement,
    RadioState,
    Scenario,
    Segment,
    WatchModel,
    Wearer,
    load_builtin,
    parse_scenario,
)

START = 1_700_000_000  # 2023-11-14 22:13:20 UTC
HR, STEPS, SPO2, TEMP = Metric.HEART_RATE, Metric.STEPS, Metric.SPO2, Metric.SKIN_TEMPERATURE

LADDER = Scenario(
    "ladder",
    (
        Segment(Activity.SLEEP, 1800),
        Segment(Activity.REST, 1200),
        Segment(Activity.WALK, 1200),
        Segment(Activity.RUN, 1200),
        Segment(Activity.WORKOUT, 1200),
        Segment(Activity.REST, 1800),
    ),
)


def band(activity: Activity, user: Wearer) -> tuple[float, float]:
    """Steady-state heart-rate band (bpm) once a segment has run five minutes."""
    rest, reserve = user.resting_hr, user.hr_max - user.resting_hr
    return {
        Activity.SLEEP: (0.75 * rest, rest + 3),
        Activity.REST: (rest - 5, rest + 0.05 * reserve + 15),
        Activity.WALK: (rest + 0.2 * reserve, rest + 0.4 * reserve),
        Activity.RUN: (rest + 0.6 * reserve, user.hr_max),
        Activity.WORKOUT: (rest + 0.7 * reserve, user.hr_max),
    }[activity]


def of(samples: list[Measurement], metric: Metric) -> list[Measurement]:
    return [s for s in samples if s.metric is metric]


def by_segment(scenario: Scenario, samples: list[Measurement], settle: int) -> dict[int, list[int]]:
    """Heart-rate values per segment index, skipping the first ``settle`` seconds of each."""
    bounds, t = [], START
    for segment in scenario.segments:
        bounds.append((t + settle, t + segment.duration_s))
        t += segment.duration_s
    out: dict[int, list[int]] = defaultdict(list)
    for s in of(samples, HR):
        for i, (lo, hi) in enumerate(bounds):
            if lo <= s.timestamp < hi:
                out[i].append(s.raw)
    return out


profiles = st.builds(
    Wearer,
    age=st.integers(18, 75),
    sex=st.sampled_from([Sex.FEMALE, Sex.MALE]),
    height_cm=st.floats(150, 200),
    weight_kg=st.floats(45, 120),
    resting_hr=st.floats(50, 75),
)


@settings(max_examples=15)
@given(seed=st.integers(0, 2**32), user=profiles)
def test_heart_rate_stays_physiological_and_orders_by_activity(seed: int, user: Wearer) -> None:
    model = WatchModel(LADDER, seed=seed, start=START, user=user)
    samples = model.advance_to(START + LADDER.period_s - 1)
    assert all(35 <= s.raw <= round(user.hr_max) for s in of(samples, HR))
    means: dict[Activity, float] = {}
    for i, values in by_segment(LADDER, samples, settle=300).items():
        activity = LADDER.segments[i].activity
        lo, hi = band(activity, user)
        assert lo <= min(values) and max(values) <= hi + 0.5, (activity, i, values)
        means.setdefault(activity, fmean(values))
    assert means[Activity.RUN] > means[Activity.WALK] > means[Activity.REST] > means[Activity.SLEEP]


def test_heart_rate_recovers_after_the_run() -> None:
    scenario = load_builtin("workout")
    for seed in range(5):
        model = WatchModel(scenario, seed=seed, start=START)
        hr = {s.timestamp: s.raw for s in of(model.advance_to(START + scenario.period_s), HR)}
        end = START + sum(s.duration_s for s in scenario.segments[:-1])  # the last rest begins
        peak = fmean(hr[t] for t in range(end - 30, end))
        after_2min = fmean(hr[t] for t in range(end + 110, end + 130))
        after_20min = fmean(hr[t] for t in range(end + 1190, end + 1210))
        assert peak - after_2min > 15
        assert after_2min > after_20min
        assert after_20min < 90


def test_heart_rate_drifts_up_during_long_exertion() -> None:
    scenario = Scenario("long run", (Segment(Activity.RUN, 3600),))
    for seed in range(5):
        model = WatchModel(scenario, seed=seed, start=START)
        hr = [s.raw for s in of(model.advance_to(START + 3599), HR)]
        assert fmean(hr[3300:3600]) > fmean(hr[600:900]) + 3


def test_rr_intervals_match_heart_rate_and_vary_more_asleep() -> None:
    scenario = Scenario("r", (Segment(Activity.SLEEP, 900), Segment(Activity.RUN, 1800)))
    model = WatchModel(scenario, seed=7, start=START)
    rr_by: dict[Activity, list[int]] = defaultdict(list)
    hr_by: dict[Activity, list[int]] = defaultdict(list)
    for t in range(START, START + scenario.period_s):
        (sample,) = of(model.advance_to(t), HR)
        state = model.state()
        if t - START in range(300, 900) or t - START >= 1500:  # settled
            rr_by[state.activity].extend(state.rr_intervals_ms)
            hr_by[state.activity].append(sample.raw)
        for interval in state.rr_intervals_ms:
            assert abs(interval - 60000 / sample.raw) < 0.35 * 60000 / sample.raw
    for activity in (Activity.SLEEP, Activity.RUN):
        rr, hr = rr_by[activity], hr_by[activity]
        assert abs(fmean(rr) - 60000 / fmean(hr)) < 0.03 * fmean(rr)
        assert abs(len(rr) - sum(hr) / 60) < 0.03 * len(rr)  # one interval per beat
    cv = {a: pstdev(rr_by[a]) / fmean(rr_by[a]) for a in rr_by}
    assert cv[Activity.SLEEP] > 2 * cv[Activity.RUN]


def test_steps_grow_within_a_local_day_and_reset_at_local_midnight() -> None:
    walking = Scenario("walk", (Segment(Activity.WALK, 3600),), loop=True)
    offset = -7 * 3600  # local midnight is 07:00 UTC
    model = WatchModel(walking, seed=3, start=START, utc_offset_s=offset)
    previous, seen_reset = None, 0
    for t in range(START, START + 3 * 86400, 60):
        model.advance_to(t)
        steps, day = model.state().steps_today, (t + offset) // 86400
        if previous is not None:
            before, before_day = previous
            if day == before_day:
                assert steps >= before  # also across UTC midnight
            else:
                assert before > 50_000 and steps <= 120
                assert (t + offset) % 86400 < 60
                seen_reset += 1
        previous = (steps, day)
    assert seen_reset == 3


def test_steps_cadence_distance_and_energy_follow_the_activity() -> None:
    for activity, lo, hi in ((Activity.WALK, 100, 115), (Activity.RUN, 160, 175)):
        scenario = Scenario("c", (Segment(activity, 3600),))
        user = Wearer(height_cm=180, weight_kg=80, sex=Sex.MALE)
        model = WatchModel(scenario, seed=1, start=START - START % 60, user=user)
        steps = of(model.advance_to(START - START % 60 + 3599), STEPS)
        assert all(lo - 1 <= s.raw <= hi + 1 for s in steps[1:])
        state = model.state()
        stride = state.distance_m_today / state.steps_today
        assert (0.65 < stride < 0.85) if activity is Activity.WALK else (1.0 < stride < 1.3)
        kcal_per_h = state.energy_kj_today / 4.184
        assert (250 < kcal_per_h < 450) if activity is Activity.WALK else (700 < kcal_per_h < 1100)
    idle = WatchModel(Scenario("s", (Segment(Activity.SLEEP, 3600),)), seed=1, start=START)
    assert sum(s.raw for s in of(idle.advance_to(START + 3599), STEPS)) == 0


def test_same_seed_same_samples_however_time_is_chopped() -> None:
    scenario = load_builtin("faults")
    end = START + 6 * 3600
    whole = WatchModel(scenario, seed=42, start=START).advance_to(end)
    chopped_model = WatchModel(scenario, seed=42, start=START)
    chopped: list[Measurement] = []
    for t in range(START, end + 1, 997):
        chopped += chopped_model.advance_to(t)
    chopped += chopped_model.advance_to(end)
    assert chopped == whole
    other = WatchModel(scenario, seed=43, start=START).advance_to(end)
    assert [s.raw for s in of(other, HR)] != [s.raw for s in of(whole, HR)]


def test_a_disabled_metric_is_not_measured_and_leaves_the_others_alone() -> None:
    scenario = load_builtin("default-day")
    day = START + 86400
    reference = WatchModel(scenario, seed=5, start=START).advance_to(day)
    for metric in Metric:
        model = WatchModel(scenario, seed=5, start=START)
        model.set_metric(metric, enabled=False)
        samples = model.advance_to(day)
        assert not of(samples, metric)
        assert samples == [s for s in reference if s.metric is not metric]
        if metric is STEPS:
            assert model.state().steps_today == 0


def test_intervals_are_honoured_and_can_change() -> None:
    model = WatchModel(load_builtin("sleep-lab"), seed=1, start=START)
    model.set_metric(HR, interval_s=5)
    model.set_metric(SPO2, interval_s=30)
    first = model.advance_to(START + 599)
    assert [s.timestamp % 5 for s in of(first, HR)] == [0] * 120
    assert len(of(first, SPO2)) == 20
    model.set_metric(HR, interval_s=1)
    assert len(of(model.advance_to(START + 659), HR)) == 60


def test_off_wrist_has_no_sensor_samples_and_zero_steps() -> None:
    scenario = load_builtin("faults")  # off-wrist at 10 min for 5 min, during rest
    model = WatchModel(scenario, seed=1, start=START)
    model.set_metric(STEPS, interval_s=10)
    samples = model.advance_to(START + 3600)
    off = range(START + 600, START + 900)
    inside = [s for s in samples if s.timestamp in off]
    assert {s.metric for s in inside} == {STEPS}
    assert all(s.raw == 0 for s in inside)
    assert of(samples, HR)[-1].timestamp == START + 3600
    events = model.take_events()
    assert (events[0].timestamp, events[0].kind, events[0].duration_s) == (
        START + 600,
        EventKind.OFF_WRIST,
        300,
    )


def test_spo2_stays_realistic_and_dips_during_sleep() -> None:
    scenario = load_builtin("sleep-lab")
    for seed in range(3):
        model = WatchModel(scenario, seed=seed, start=START)
        model.set_metric(SPO2, interval_s=10)
        model.set_metric(HR, enabled=False)
        samples = of(model.advance_to(START + scenario.period_s - 1), SPO2)
        asleep = [s.value for s in samples if 1800 <= s.timestamp - START < 1800 + 8 * 3600]
        awake = [s.value for s in samples if s.timestamp - START < 1800]
        assert all(94 <= v <= 100 for v in awake)
        assert all(85 <= v <= 100 for v in asleep)
        assert min(asleep) < min(awake) - 1.5  # desaturation dips
        assert 95 <= fmean(awake) <= 99


def test_skin_temperature_is_higher_at_night() -> None:
    offset = 2 * 3600
    model = WatchModel(load_builtin("default-day"), seed=9, start=START, utc_offset_s=offset)
    temps = of(model.advance_to(START + 3 * 86400), TEMP)
    hour = {s: ((s.timestamp + offset) % 86400) // 3600 for s in temps}
    night = [s.value for s in temps if 1 <= hour[s] < 5]
    afternoon = [s.value for s in temps if 13 <= hour[s] < 17]
    assert fmean(night) > fmean(afternoon) + 1.0
    assert all(30 < s.value < 37 for s in temps)


def test_battery_lasts_days_and_depends_on_settings_and_radio() -> None:
    resting = Scenario("rest", (Segment(Activity.REST, 86400),))

    def left_after_a_day(**changes: bool) -> int:
        model = WatchModel(resting, seed=1, start=START, radio=RadioState.CONNECTED)
        if changes.get("no_hr"):
            model.set_metric(HR, enabled=False)
        if changes.get("radio_off"):
            model.set_radio(RadioState.OFF)
        model.advance_to(START + 86399)
        return model.state().battery_percent

    default = left_after_a_day()
    assert 55 <= default <= 80  # two to five days on a charge
    assert left_after_a_day(no_hr=True) > default + 5
    assert left_after_a_day(radio_off=True) > default


def test_battery_events_empty_battery_and_charging() -> None:
    text = """
    [[segment]]
    activity = "rest"
    duration = "12h"
    [[event]]
    at = "1h"
    kind = "battery_low"
    level = 2
    [[event]]
    at = "4h"
    kind = "charge"
    duration = "1h"
    """
    model = WatchModel(parse_scenario(text, "t.toml"), seed=1, start=START)
    samples = model.advance_to(START + 6 * 3600)
    kinds = [(e.timestamp - START, e.kind) for e in model.take_events()]
    assert kinds[0] == (3600, EventKind.BATTERY_LOW)
    assert kinds[1][1] is EventKind.BATTERY_EMPTY and 3600 < kinds[1][0] < 4 * 3600
    assert kinds[2] == (4 * 3600, EventKind.CHARGE)
    died = START + kinds[1][0]
    assert not [s for s in samples if died <= s.timestamp < START + 4 * 3600]
    charging = [s for s in samples if START + 4 * 3600 <= s.timestamp < START + 5 * 3600]
    assert {(s.metric, s.raw) for s in charging} == {(STEPS, 0)}  # powered, off the wrist
    assert of(samples, HR)[-1].timestamp == START + 6 * 3600  # back on the wrist, powered
    assert model.state().battery_percent > 60


def test_set_time_skips_without_measuring() -> None:
    model = WatchModel(load_builtin("default-day"), seed=1, start=START)
    model.advance_to(START + 100)
    jump = START + 10 * 86400
    model.set_time(jump)
    samples = model.advance_to(jump + 59)
    assert [s.timestamp for s in of(samples, HR)] == list(range(jump, jump + 60))
    assert model.state().steps_today == 0  # a new local day


def test_set_time_to_a_measured_second_does_not_measure_it_again() -> None:
    # The phone sets the clock on every connection, usually to the second the watch is in.
    model = WatchModel(load_builtin("default-day"), seed=1, start=START)
    measured = model.advance_to(START + 100)
    model.set_time(START + 100)
    measured += model.advance_to(START + 102)
    model.set_time(START + 95)  # a little behind: held until the clock passes START + 102
    measured += model.advance_to(START + 110)
    stamps = [s.timestamp for s in of(measured, HR)]
    assert stamps == list(range(START, START + 111))


def test_set_time_far_back_holds_until_the_clock_passes_what_was_measured() -> None:
    # A correction an hour back: no second measured twice, no timestamp below an older seq.
    model = WatchModel(load_builtin("default-day"), seed=1, start=START)
    measured = model.advance_to(START + 3600)
    model.set_time(START)
    assert model.advance_to(START + 3600) == []  # held
    measured += model.advance_to(START + 3609)
    stamps = [s.timestamp for s in of(measured, HR)]
    assert stamps == list(range(START, START + 3610))
