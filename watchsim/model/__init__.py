"""The watch's physiology model, virtual clock and scenarios (pure, seeded, no I/O but TOML)."""

from __future__ import annotations

from watchsim.model.clock import VirtualClock
from watchsim.model.physiology import (
    DEFAULT_INTERVALS,
    Measurement,
    MetricSettings,
    ModelEvent,
    RadioState,
    WatchModel,
    WatchState,
)
from watchsim.model.scenario import (
    Activity,
    Anchor,
    EventKind,
    Scenario,
    ScenarioError,
    ScriptedEvent,
    Segment,
    builtin_names,
    load_builtin,
    load_scenario,
    parse_duration,
    parse_scenario,
)
from watchsim.model.user import Wearer

__all__ = [
    "DEFAULT_INTERVALS",
    "Activity",
    "Anchor",
    "EventKind",
    "Measurement",
    "MetricSettings",
    "ModelEvent",
    "RadioState",
    "Scenario",
    "ScenarioError",
    "ScriptedEvent",
    "Segment",
    "VirtualClock",
    "WatchModel",
    "WatchState",
    "Wearer",
    "builtin_names",
    "load_builtin",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
]
