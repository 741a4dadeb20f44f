"""``phoneagent run`` when the air process dies at the moments that matter (issue 17, 1).

A TCP hop between the agent and the air sees the agent's radio start powering on (its
first HCI command), so the air can be killed exactly then: no sleep, no luck involved.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tests.mosquitto import free_port
from tests.processes import Phone, Watch, air_back, assert_backfilled, kill, line, start_air

pytestmark = pytest.mark.system


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


class AirGate:
    """Forwards each agent connection to the air on ``air_port``. ``kill_at_power_on``:
    the air process to SIGKILL when the next radio sends its first HCI command (the reset
    that starts its power-on), whose connection is then closed unanswered."""

    def __init__(self, air_port: int) -> None:
        self.air_port = air_port
        self.kill_at_power_on: asyncio.subprocess.Process | None = None
        self.killed = asyncio.Event()
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def drop(self) -> None:
        """Close every forwarded connection: to the agent, its radio went away."""
        for writer in list(self._open):
            writer.close()

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(65536)
        air, self.kill_at_power_on = self.kill_at_power_on, None
        if air is not None:
            await kill(air)
            self.killed.set()
        try:
            if not first or air is not None:
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.air_port)
            except OSError:
                return  # no air: the radio powering on loses its transport
            up_writer.write(first)
            self._open |= {writer, up_writer}
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._open -= {writer}
            writer.close()


async def test_run_carries_on_when_the_air_dies_while_the_radio_powers_on(
    tmp_path: Path,
) -> None:
    """The agent's radio goes away, and the air dies just as the agent's new radio powers
    on: ``run`` backs off, opens a radio once the air is back and syncs on, exactly once.
    On 40d2be5 it exited 1 with Bumble's ``TransportLostError``."""
    port = free_port()
    air, air_address = await start_air(port)
    gate = AirGate(port)
    phone = Phone(tmp_path / "agent", f"loopback:{await gate.start()}")
    watch, address = await Watch(tmp_path / "w1", ("--air", air_address)).start()
    try:
        await phone("pair", address, passkey_from=watch)
        async with phone.daemon(address) as agent:
            gate.kill_at_power_on = air
            gate.drop()
            await asyncio.wait_for(gate.killed.wait(), phone.daemon_wait)
            air = await air_back(port, watch, agent, address, phone.daemon_wait)

            # The air dies again right after a new radio opened: its engine has just started.
            gate.drop()
            await line(agent, rf"{address}: radio lost", wait=phone.daemon_wait, stderr=True)
            await line(agent, rf"{address}: waiting", wait=phone.daemon_wait, stderr=True)
            await kill(air)
            air = await air_back(port, watch, agent, address, phone.daemon_wait)
        assert_backfilled(await phone.status(address))
        log = (phone.data_dir / "logs" / "phoneagent.log").read_text()
        assert "went away while powering on" in log  # the moment this test is about
    finally:
        await gate.close()
        await kill(watch)
        await kill(air)
