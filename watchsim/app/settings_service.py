"""The Settings service: the wearer's profile and which metrics are measured, kept in
``<state_dir>/settings.json`` so they survive a reboot; factory reset deletes it.

The model is the one place these settings act: a disabled metric is not measured at
all, and the profile feeds its energy and distance estimates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from protocol import settings as wire
from protocol import uuids
from protocol.metrics import Metric
from watchsim.model import DEFAULT_INTERVALS, WatchModel, Wearer
from watchsim.peripheral.port import AttError, AttErrorCode, Peer, Peripheral

SETTINGS_FILE: Final = "settings.json"


def profile_to_wire(user: Wearer) -> wire.UserProfile:
    """The wire's profile of the model's wearer: with ``profile_from_wire`` the one place
    the two meet (whole centimetres and 0.1 kg steps on the wire)."""
    return wire.UserProfile(
        age_years=user.age,
        sex=user.sex,
        height_cm=round(user.height_cm),
        weight_decikg=round(user.weight_kg * 10),
    )


def profile_from_wire(profile: wire.UserProfile, current: Wearer) -> Wearer:
    """The model's profile; an unspecified sex keeps the current one. ValueError if the
    model cannot simulate such a body."""
    return Wearer(
        age=profile.age_years,
        sex=current.sex if profile.sex is wire.Sex.UNSPECIFIED else profile.sex,
        height_cm=float(profile.height_cm),
        weight_kg=profile.weight_kg,
        resting_hr=current.resting_hr,
    )


def metric_table(model: WatchModel) -> wire.MetricSettings:
    return wire.MetricSettings(
        tuple(
            wire.MetricSetting(m, model.settings(m).enabled, model.settings(m).interval_s)
            for m in Metric
        )
    )


class SettingsStore:
    """Loads the saved settings into the model and saves the model's settings back."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SETTINGS_FILE

    def load_into(self, model: WatchModel) -> None:
        """Apply saved settings, or the defaults when there are none (fresh or reset)."""
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        user = data.get("user")
        model.set_user(
            Wearer(
                age=user["age"],
                sex=wire.Sex[user["sex"].upper()],
                height_cm=user["height_cm"],
                weight_kg=user["weight_kg"],
                resting_hr=user["resting_hr"],
            )
            if user
            else Wearer()
        )
        metrics = data.get("metrics", {})
        for metric in Metric:
            row = metrics.get(metric.key, {})
            model.set_metric(
                metric,
                enabled=bool(row.get("enabled", True)),
                interval_s=int(row.get("interval_s", DEFAULT_INTERVALS[metric])),
            )

    def save(self, model: WatchModel) -> None:
        user = model.user
        data = {
            "user": {
                "age": user.age,
                "sex": user.sex.name.lower(),  # "female" | "male", as ever
                "height_cm": user.height_cm,
                "weight_kg": user.weight_kg,
                "resting_hr": user.resting_hr,
            },
            "metrics": {
                m.key: {
                    "enabled": model.settings(m).enabled,
                    "interval_s": model.settings(m).interval_s,
                }
                for m in Metric
            },
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


class SettingsService:
    """Binds the Settings characteristics of one peripheral to the model and the store."""

    def __init__(
        self,
        peripheral: Peripheral,
        model: WatchModel,
        store: SettingsStore,
        control: Callable[[wire.SettingsOpcode], Awaitable[None]],
    ) -> None:
        self._model = model
        self._store = store
        self._control = control
        peripheral.set_read_handler(
            uuids.USER_PROFILE, lambda: profile_to_wire(self._model.user).encode()
        )
        peripheral.set_write_handler(uuids.USER_PROFILE, self._on_profile)
        peripheral.set_read_handler(
            uuids.METRIC_SETTINGS, lambda: metric_table(self._model).encode()
        )
        peripheral.set_write_handler(uuids.METRIC_SETTINGS, self._on_metrics)
        peripheral.set_write_handler(uuids.SETTINGS_CONTROL, self._on_control)

    async def _on_profile(self, _peer: Peer, value: bytes) -> None:
        profile = wire.UserProfile.decode(value)  # a ProtocolError becomes an ATT error
        try:
            user = profile_from_wire(profile, self._model.user)
        except ValueError as error:  # valid on the wire, but outside what the model simulates
            raise AttError(AttErrorCode.VALUE_NOT_ALLOWED, str(error)) from None
        self._model.set_user(user)
        self._store.save(self._model)

    async def _on_metrics(self, _peer: Peer, value: bytes) -> None:
        table = wire.MetricSettings.decode(value)
        for row in table.rows:
            self._model.set_metric(row.metric, enabled=row.enabled, interval_s=row.interval_s)
        self._store.save(self._model)

    async def _on_control(self, _peer: Peer, value: bytes) -> None:
        # Acted on after the write is acknowledged: both restart the radio.
        await self._control(wire.SettingsControl.decode(value).opcode)
