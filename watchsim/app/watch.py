"""The watch application: binds the model, the on-watch history and a peripheral.

Lifetimes, from longest to shortest:
- the wearer and the clock (model, virtual clock): the whole process, across reboots;
- a boot (history handle, settings, relay screens): until reboot or factory reset;
- a radio session (peripheral, services bound to it): until out of range or reboot.
Measuring goes on while the radio is away, so the history has work for the next sync.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

import tenacity

from protocol import uuids
from protocol.metrics import Metric
from protocol.profile import ADVERTISED_SERVICE_UUIDS, PROFILE, ServiceSpec
from protocol.pulse_oximeter import PlxFeature, PlxFeatures
from protocol.settings import SettingsOpcode
from watchsim.app.device_info_service import bind_device_info, constant
from watchsim.app.heart_rate_service import HeartRateService
from watchsim.app.history_service import HistoryService
from watchsim.app.live import (
    DEMO,
    KJ_PER_KCAL,
    TEMPERATURE_TYPE,
    LiveValues,
    Push,
    activity_summary,
    local_datetime,
)
from watchsim.app.radios import Radio
from watchsim.app.relays import Relays, RelayScreen
from watchsim.app.settings_service import SettingsService, SettingsStore
from watchsim.app.tasks import cancel_and_wait
from watchsim.app.time_service import TimeService
from watchsim.errors import WatchsimError
from watchsim.history import DEFAULT_CAPACITY, History
from watchsim.model import (
    EventKind,
    Measurement,
    ModelEvent,
    RadioState,
    Scenario,
    VirtualClock,
    WatchModel,
    load_builtin,
)
from watchsim.peripheral.port import (
    Connected,
    Disconnected,
    PairingMode,
    Peer,
    Peripheral,
    PeripheralEvent,
    RadioLost,
)

logger = logging.getLogger(__name__)

DEFAULT_SCENARIO: Final = "default-day"
HISTORY_DIR: Final = "history"
# Pace of the model loop in real seconds: at most one step per simulated second, and
# no faster than this so that --speed 3600 does not spin.
MIN_TICK_S: Final = 0.2
BACKFILL_CHUNK_S: Final = 3600
PUSH_TIMEOUT_S: Final = 5.0
# Back-off (real seconds) while a lost radio stack (the air) is not back yet.
REJOIN_INITIAL_S: Final = 0.2
REJOIN_MAX_S: Final = 5.0
EVENT_LOG_LINES: Final = 12
_FOREVER_S: Final = 365 * 86_400


def _nobody(_uuid: str) -> bool:
    return False


class WatchError(WatchsimError):
    """The watch cannot start or act; the message is meant for the person running it."""


@dataclass(frozen=True)
class WatchConfig:
    state_dir: Path
    name: str = "WatchSim"
    seed: int = 1
    scenario: Scenario | None = None  # None: the built-in default day
    speed: float = 1.0
    start_time: float | None = None  # UTC seconds; None: now
    utc_offset_s: int = 0
    backfill_s: int = 0  # simulated past to pre-fill a fresh history with
    pairing: PairingMode = PairingMode.PASSKEY
    history_capacity: int = DEFAULT_CAPACITY
    durable_history: bool = True  # fsync the history (a fleet turns it off: watchsim.fleet)
    # When in each second the watch measures, as a fraction of the second: a fleet gives
    # every watch its own, so N watches do not all measure on the same boundary.
    sample_phase: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_phase < 1.0:
            raise WatchError(f"the sample phase must be in [0, 1), got {self.sample_phase}")


@dataclass
class _Session:
    """One radio session: the peripheral and the services bound to it."""

    peripheral: Peripheral
    history: HistoryService | None  # None: a profile without History Sync (InfiniTime's)
    # As each connected (its MTU then is 23: the exchange comes after), by ``Peer.link``.
    peers: dict[int | str, Peer] = field(default_factory=dict)

    def current_peers(self) -> list[Peer]:
        """The connected peers with what the peripheral knows of them now (MTU, bond, the
        identity address once resolved), where it can tell (bless cannot)."""
        now = {p.link: p for p in self.peripheral.peers}
        return [now.get(link, peer) for link, peer in self.peers.items()]


class WatchApp:
    # The GATT table this watch publishes (a personality, e.g. ``InfiniTimeApp``, has its own).
    profile: ClassVar[Sequence[ServiceSpec]] = PROFILE

    def __init__(self, config: WatchConfig, radio: Radio) -> None:
        self.config = config
        self.radio = radio
        self.clock = VirtualClock(
            config.start_time, speed=config.speed, utc_offset_s=config.utc_offset_s
        )
        start = int(self.clock.now())
        self.model = WatchModel(
            config.scenario or load_builtin(DEFAULT_SCENARIO),
            seed=config.seed,
            start=start - config.backfill_s,
            utc_offset_s=config.utc_offset_s,
        )
        self._store = SettingsStore(config.state_dir)
        self.history: History | None = None
        self.relays: RelayScreen = self._new_relays()
        self.live = LiveValues()
        self.passkey: int | None = None
        self._passkey_shown = asyncio.Event()
        self.passkey_listeners: list[Callable[[int], None]] = []
        self.log_listeners: list[Callable[[str], None]] = []
        # Called as (history, first_seq, last_seq) after each durable append, in every boot.
        self.append_listeners: list[Callable[[History, int, int], None]] = []
        self.events: deque[str] = deque(maxlen=EVENT_LOG_LINES)
        self.back_in_range_at: float | None = None
        self.booting = False
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._away: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the state dir, backfill a fresh history, power the radio, start measuring."""
        self.open_state_dir()
        self._boot_storage()
        history = self._history()
        if self.config.backfill_s and history.next_seq == 1:
            await self._backfill()
        else:
            self._resume_timeline(history.newest_timestamp)
            self.model.set_time(int(self.clock.now()))
        async with self._lock:
            await self._radio_up()
        self._ticker = asyncio.create_task(self._tick_forever(), name="watch-model")
        self.log(f"{self.config.name} started ({self.config.pairing.value} pairing)")

    async def stop(self) -> None:
        await cancel_and_wait([self._ticker, self._away, *self._chores])
        async with self._lock:
            await self._radio_down()
            if self.history is not None:
                self.history.close()
                self.history = None

    async def stop_measuring(self) -> None:
        """Freeze the wearer: no new samples from now on; the radio and history stay up."""
        ticker, self._ticker = self._ticker, None
        await cancel_and_wait([ticker])

    async def reboot(self) -> None:
        """Restart the app from the state dir: history, settings and bonds survive."""
        await self._restart(wipe=False)
        self.log("rebooted")

    async def factory_reset(self) -> None:
        """Wipe history, settings, profile and bonds, then reboot."""
        await self._restart(wipe=True)
        self.log("factory reset done")

    async def _restart(self, *, wipe: bool) -> None:
        await self._cancel_away()
        async with self._lock:
            self.booting = True
            self.log("factory reset" if wipe else "rebooting")
            await self._radio_down()
            history = self._history()
            if wipe:
                history.wipe()
                self._store.delete()
                self.radio.forget_bonds()
            history.close()
            self._boot_storage()
            await self._radio_up()
            self.booting = False

    async def out_of_range(self, seconds: int) -> None:
        """Drop every connection and stop advertising for ``seconds`` of simulated time."""
        await self._cancel_away()
        async with self._lock:
            await self._radio_down()
        self.back_in_range_at = self.clock.now() + seconds
        self.log(f"out of range for {seconds // 60} min")
        self._away = asyncio.create_task(self._come_back(), name="watch-out-of-range")

    def off_wrist(self, seconds: int = _FOREVER_S) -> None:
        self.model.inject(EventKind.OFF_WRIST, duration_s=seconds)

    def on_wrist(self) -> None:
        self.model.put_on_wrist()
        self.log("back on wrist")

    def battery_low(self, level: int) -> None:
        self.model.inject(EventKind.BATTERY_LOW, level=level)

    def log(self, line: str) -> None:
        stamp = local_datetime(self.clock.now(), self.clock.utc_offset_s).strftime("%H:%M:%S")
        self.events.appendleft(f"{stamp} {line}")
        logger.info("%s", line)
        for listener in tuple(self.log_listeners):
            listener(line)

    def _history(self) -> History:
        if self.history is None:
            raise WatchError("the watch is not running")
        return self.history

    def open_state_dir(self) -> None:
        """Create the state dir; WatchError (for people) if it cannot be written."""
        state_dir = self.config.state_dir
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            probe = state_dir / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise WatchError(f"state dir {state_dir} is not writable: {error}") from None

    def _boot_storage(self) -> None:
        config = self.config
        history = History(
            config.state_dir / HISTORY_DIR,
            capacity=config.history_capacity,
            durable=config.durable_history,
        )
        for listener in self.append_listeners:
            history.subscribe(functools.partial(listener, history))
        self.history = history
        self._store.load_into(self.model)
        self.relays = self._new_relays()
        self.live = LiveValues()

    def _resume_timeline(self, newest: int | None) -> None:
        """Start the clock after the history's newest record, never before it.

        A watch restarted on its state dir (``--speed 60`` again, or a ``--start`` earlier
        than what it recorded) would otherwise stamp new records before older seqs.
        """
        if newest is not None and self.clock.now() < newest + 1:
            self.clock.set(newest + 1)
            stamp = local_datetime(newest + 1, self.clock.utc_offset_s).isoformat(sep=" ")
            self.log(f"clock continues the history's timeline from {stamp}")

    async def _backfill(self) -> None:
        """Generate the simulated past quickly, yielding between chunks."""
        history = self._history()
        self.log(f"backfilling {self.config.backfill_s / 3600:g} h of history")
        while (now := int(self.clock.now())) > self.model.now:
            measured = self.model.advance_to(min(now, self.model.now + BACKFILL_CHUNK_S))
            history.append(measured)
            self.model.take_events()  # the past's scripted radio events did not happen live
            await asyncio.sleep(0)
        self.log(f"backfill done: {history.count} records")

    # --- the model loop -------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        # Second t is measured at t + phase: the model still steps through every second
        # once (advance_to), only the moment within the second moves.
        phase = self.config.sample_phase
        wait = self.clock.real_seconds_until(self.model.now + 1 + phase)
        while True:
            await asyncio.sleep(wait)
            async with self._lock:
                await self._tick()
            # At most a simulated second: a model holding for a clock set back sees the
            # next set (the phone's, forward) within a second, not at the end of the hold.
            until = self.clock.real_seconds_until(self.model.now + 1 + phase)
            wait = max(MIN_TICK_S, min(until, 1.0 / self.clock.speed))

    async def _tick(self) -> None:
        measured = self.model.advance_to(int(self.clock.now()))
        if measured:
            self._history().append(measured)
        listened = self._session.peripheral.listened if self._session else _nobody
        for push in self._live_pushes(measured, listened):
            await self._push(push)
        for event in self.model.take_events():
            self._on_model_event(event)

    def _live_pushes(
        self, measured: list[Measurement], listened: Callable[[str], bool]
    ) -> list[Push]:
        """What this second's samples warrant on the air (a personality sends its own)."""
        return self.live.step(self.model.state(), measured, self.clock.utc_offset_s, listened)

    async def _push(self, push: Push) -> None:
        if self._session is None:
            return
        peripheral = self._session.peripheral
        send = peripheral.indicate if push.indicate else peripheral.notify
        try:
            # A deadline on this task, not wait_for's task and timer per push (a fleet
            # pushes several per watch per second).
            async with asyncio.timeout(PUSH_TIMEOUT_S):
                await send(push.uuid, push.value)
        except Exception as error:  # a slow or vanished peer must not stop the model
            logger.warning("could not push %s: %r", push.uuid, error)

    def _on_model_event(self, event: ModelEvent) -> None:
        kind = event.kind
        if kind is EventKind.OUT_OF_RANGE:
            self._chore(self.out_of_range(event.duration_s))
        elif kind is EventKind.REBOOT:
            self._chore(self.reboot())
        elif kind is EventKind.BATTERY_LOW:
            self.log(f"battery low: {event.level} %")
        elif kind in (EventKind.OFF_WRIST, EventKind.CHARGE):
            minutes = "" if event.duration_s >= _FOREVER_S else f" for {event.duration_s // 60} min"
            self.log(f"{kind.value.replace('_', ' ')}{minutes}")
        else:
            self.log(kind.value.replace("_", " "))

    def _chore(self, coroutine: Any) -> None:
        """Run an action outside the caller (e.g. a reboot asked for from inside a tick)."""
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._chores.add(task)
        task.add_done_callback(self._chore_done)

    def _chore_done(self, task: asyncio.Task[None]) -> None:
        self._chores.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("watch action failed: %r", error)

    # --- radio ------------------------------------------------------------------------------

    async def _radio_up(self) -> None:
        peripheral = await self.radio.open(self, self.profile)
        served = any(s.uuid == uuids.HISTORY_SERVICE for s in self.profile)
        history = HistoryService(peripheral, self._history()) if served else None
        self._session = _Session(peripheral, history)
        self._bind(peripheral)
        peripheral.add_listener(self._on_peripheral_event)
        await self._advertise(peripheral)
        self.model.set_radio(RadioState.ADVERTISING)

    async def _advertise(self, peripheral: Peripheral) -> None:
        await peripheral.start_advertising(
            self.config.name, uuids.APPEARANCE_SMARTWATCH, ADVERTISED_SERVICE_UUIDS
        )

    async def _radio_down(self) -> None:
        session, self._session = self._session, None
        self.relays.attach(None)
        self.model.set_radio(RadioState.OFF)
        if session is not None:
            if session.history is not None:
                await session.history.close()
            await session.peripheral.stop()

    async def _rejoin(self, lost: _Session) -> None:
        """Like coming back in range, except that the stack (the air) must come back first:
        a new peripheral is asked for with back-off until it answers. History, bonds and
        the model carry on meanwhile, as when nobody is connected."""
        async with self._lock:
            if self._session is not lost:
                return  # a reboot or an out-of-range spell replaced it already
            await self._radio_down()
        async for attempt in tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=REJOIN_INITIAL_S, max=REJOIN_MAX_S),
            retry=tenacity.retry_if_exception_type(Exception),  # the air is not back yet
            before_sleep=self._radio_not_back,
        ):
            with attempt:
                async with self._lock:
                    if self._session is None and self.back_in_range_at is None:
                        await self._radio_up()
        self.log("radio back")

    async def _radio_not_back(self, retry: tenacity.RetryCallState) -> None:
        assert retry.outcome is not None and retry.next_action is not None
        error, delay = retry.outcome.exception(), retry.next_action.sleep
        logger.info("radio not back (%r); retrying in %.1f s", error, delay)
        async with self._lock:
            await self._radio_down()  # what a half-done attempt opened

    async def _cancel_away(self) -> None:
        away, self._away = self._away, None
        await cancel_and_wait([away])
        self.back_in_range_at = None

    async def _come_back(self) -> None:
        # Re-checked every second: the phone may set the clock while the watch is away.
        while self.back_in_range_at is not None and self.clock.now() < self.back_in_range_at:  # noqa: ASYNC110
            await asyncio.sleep(min(1.0, self.clock.real_seconds_until(self.back_in_range_at)))
        self.back_in_range_at = None
        async with self._lock:
            if self._session is None:
                await self._radio_up()
        self.log("back in range")

    def _on_peripheral_event(self, event: PeripheralEvent) -> None:
        session = self._session
        if session is None:
            return
        if isinstance(event, Connected):
            session.peers[event.peer.link] = event.peer
            self.model.set_radio(RadioState.CONNECTED)
            self.log(f"connected: {event.peer.address}")
        elif isinstance(event, Disconnected):
            session.peers.pop(event.peer.link, None)
            self.passkey = None
            if not session.peers:
                self.model.set_radio(RadioState.ADVERTISING)
            self.log(f"disconnected: {event.peer.address} (reason 0x{event.reason:02X})")
        elif isinstance(event, RadioLost):
            self.log(f"radio lost ({event.reason}); rejoining")
            self._chore(self._rejoin(session))

    # --- the GATT table -----------------------------------------------------------------------

    def _new_relays(self) -> RelayScreen:
        """The relay screens of a boot."""
        return Relays(self.log)

    def _bind(self, peripheral: Peripheral) -> None:
        """Every service but History (``_radio_up``) on a new peripheral."""
        bind_device_info(peripheral, self.config.state_dir)
        constants = {
            uuids.TEMPERATURE_TYPE: TEMPERATURE_TYPE.encode(),
            uuids.PLX_FEATURES: PlxFeatures(
                PlxFeature.SPOT_CHECK_TIMESTAMP, measurement_status_support=DEMO
            ).encode(),
        }
        for uuid, value in constants.items():
            peripheral.set_read_handler(uuid, constant(value))
        peripheral.set_read_handler(
            uuids.BATTERY_LEVEL, lambda: self.live.battery(self.model.state())
        )
        peripheral.set_read_handler(
            uuids.ACTIVITY_SUMMARY,
            lambda: activity_summary(self.model.state(), self.clock.utc_offset_s),
        )
        HeartRateService(peripheral, self.live)
        TimeService(peripheral, self.clock, self.model, self.log)
        SettingsService(peripheral, self.model, self._store, self._on_settings_control)
        self.relays.attach(peripheral)

    async def _on_settings_control(self, opcode: SettingsOpcode) -> None:
        # After the write is acknowledged: both tear down the link that carried it.
        if opcode is SettingsOpcode.REBOOT:
            self._chore(self.reboot())
        else:
            self._chore(self.factory_reset())

    # --- PairingDisplay ---------------------------------------------------------------------

    async def show_passkey(self, peer_address: str, passkey: int) -> None:
        self._show(f"passkey for {peer_address}", passkey)

    async def confirm_number(self, peer_address: str, number: int) -> bool:
        """Numeric comparison: shown like a passkey, and the wearer always confirms."""
        self._show(f"confirm number for {peer_address}", number)
        return True

    def _show(self, what: str, number: int) -> None:
        self.passkey = number
        self._passkey_shown.set()
        self._passkey_shown = asyncio.Event()
        self.log(f"{what}: {number:06d}")
        for listener in tuple(self.passkey_listeners):
            listener(number)

    async def wait_for_passkey(self, timeout_s: float) -> int:
        """The passkey on screen, or the next one shown within ``timeout_s``."""
        if self.passkey is not None:
            return self.passkey
        shown = self._passkey_shown
        try:
            await asyncio.wait_for(shown.wait(), timeout_s)
        except TimeoutError:
            raise WatchError(f"no passkey shown within {timeout_s:g} s") from None
        assert self.passkey is not None
        return self.passkey

    # --- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Everything the console shows, JSON-ready (also ``watchsim ctl status``)."""
        state = self.model.state()
        history = self.history
        session = self._session
        offset = self.clock.utc_offset_s
        last = state.last

        def newest(metric: Metric) -> float | None:
            sample = last.get(metric)
            return None if sample is None else sample.raw / metric.scale

        if session is None:
            radio = "off"
        elif session.peers:
            radio = "connected"
        else:
            radio = "advertising"
        return {
            "name": self.config.name,
            "address": self.radio.address,
            "state_dir": str(self.config.state_dir),
            "clock": local_datetime(self.clock.now(), offset).isoformat(timespec="seconds"),
            "speed": self.clock.speed,
            "radio": radio,
            "booting": self.booting,
            "back_in_range_at": None
            if self.back_in_range_at is None
            else local_datetime(self.back_in_range_at, offset).isoformat(timespec="seconds"),
            "peers": [
                {"address": p.address, "bonded": p.bonded, "mtu": p.mtu}
                for p in (session.current_peers() if session else ())
            ],
            "passkey": self.passkey,
            "activity": state.activity.value,
            "on_wrist": state.on_wrist,
            "charging": state.charging,
            "battery_percent": state.battery_percent,
            "heart_rate": state.heart_rate if state.on_wrist else None,
            "spo2": newest(Metric.SPO2),
            "skin_temperature": newest(Metric.SKIN_TEMPERATURE),
            "steps_today": state.steps_today,
            "distance_m": round(state.distance_m_today),
            "energy_kcal": round(state.energy_kj_today / KJ_PER_KCAL),
            "metrics": {
                m.key: {
                    "enabled": self.model.settings(m).enabled,
                    "interval_s": self.model.settings(m).interval_s,
                }
                for m in Metric
            },
            "history": None
            if history is None
            else {
                "count": history.count,
                "oldest_seq": history.oldest_seq,
                "newest_seq": history.newest_seq,
                "next_seq": history.next_seq,
                "capacity": history.capacity,
                "reporting": session is not None
                and session.history is not None
                and session.history.reporting,
            },
            **self.relays.status(),
            "events": list(self.events),
        }
