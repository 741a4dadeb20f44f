"""BlueZ's own command-line tools (``gatttool``, ``bluetoothctl``) as the hostile central
on hci1: no project code on that side.

Each runs as a process on the test's event loop, since the watch (bless) answers
bluetoothd from the same loop.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import pty
import re
from dataclasses import dataclass
from typing import Final

from protocol.uuids import sig_uuid

WAIT: Final = 30.0
# Colours, and readline's invisible-prompt markers (\x01 \x02), in bluetoothctl's output.
_NOISE: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x01\x02\r]")
# A colour code cut by the end of a read: kept until the next read completes it.
_CUT: Final = re.compile(r"\x1b(\[[0-9;?]*)?$")
SERVICE_DECLARATIONS: Final = (sig_uuid(0x2800), sig_uuid(0x2801))
CHARACTERISTIC_DECLARATION: Final = sig_uuid(0x2803)
CCCD: Final = sig_uuid(0x2902)


class Tool:
    """A running tool on a terminal of its own (both tools change what they print, or stop
    reading, without one): send it lines, wait for what it prints, colours stripped."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, terminal: int) -> None:
        self.name = name
        self.output = ""
        self._process = process
        self._terminal = terminal
        self._reader = asyncio.StreamReader()
        self._transport: asyncio.BaseTransport | None = None
        self._seen = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    @classmethod
    async def start(cls, *argv: str) -> Tool:
        terminal, side = pty.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=side, stdout=side, stderr=side, start_new_session=True
            )
        finally:
            os.close(side)
        tool = cls(argv[0], process, terminal)
        tool._transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(tool._reader),
            os.fdopen(terminal, "rb", buffering=0, closefd=False),
        )
        return tool

    def send(self, line: str) -> None:
        os.write(self._terminal, f"{line}\r".encode())

    async def _read(self) -> bool:
        """Add what the tool printed next to ``output``; False once it has exited."""
        try:
            chunk = await self._reader.read(4096)
        except OSError:  # EIO: the terminal's other side is closed
            chunk = b""
        text = self._pending + self._decoder.decode(chunk, final=not chunk)
        cut = _CUT.search(text) if chunk else None
        self._pending = text[cut.start() :] if cut else ""
        self.output += _NOISE.sub("", text[: cut.start()] if cut else text)
        return bool(chunk)

    async def expect(self, pattern: str) -> re.Match[str]:
        """The first match of ``pattern`` after the previous match, waiting for output."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(WAIT):
                while (found := regex.search(self.output, self._seen)) is None:
                    if not await self._read():
                        raise AssertionError(f"{self.name} ended without {pattern!r}")
        except (TimeoutError, AssertionError):
            raise AssertionError(
                f"{self.name}: no {pattern!r} within {WAIT:g} s; it printed:\n{self.output}"
            ) from None
        self._seen = found.end()
        return found

    async def finish(self, last: str | None = None) -> str:
        """Send ``last`` (the tool's quit command) if given, wait for the tool to end (killed
        after ``WAIT``), and return all it printed."""
        if last is not None:
            self.send(last)
        try:
            async with asyncio.timeout(WAIT):
                while await self._read():
                    pass
        except TimeoutError:
            self._process.kill()
        await self._process.wait()
        if self._transport is not None:
            self._transport.close()
        os.close(self._terminal)
        return self.output

    async def stop(self) -> str:
        """End a tool that runs until stopped (SIGTERM); all it printed."""
        with contextlib.suppress(ProcessLookupError):  # it ended already
            self._process.terminate()
        return await self.finish()


async def run(*argv: str) -> str:
    """A tool run to its end: everything it printed."""
    return await (await Tool.start(*argv)).finish()


async def btmon() -> Tool:
    """BlueZ's HCI monitor on hci1: the witness of what the central sent and received,
    returned once it is attached (it replays the index it watches as "= Open Index"):
    a packet sent before that is never seen, so a witness started just before a tool
    missed the tool's first write now and then."""
    monitor = await Tool.start("btmon", "--no-pager", "-i", "hci1")
    await monitor.expect(r"= Open Index")
    return monitor


def gatttool(watch: str, *args: str) -> tuple[str, ...]:
    """gatttool on hci1 towards the watch, at the lowest security (no encryption asked)."""
    return ("gatttool", "-i", "hci1", "-b", watch, *args)


@dataclass(frozen=True)
class Characteristic:
    value: int  # handle of the value
    cccd: int | None


def characteristics(listing: str) -> dict[str, Characteristic]:
    """UUID -> handles, from ``gatttool --char-desc`` (Find Information over every handle)."""
    found: dict[str, Characteristic] = {}
    current: str | None = None
    declared = False
    for handle_text, uuid in re.findall(
        r"handle = 0x([0-9a-f]{4}), uuid = ([0-9a-f-]{36})", listing
    ):
        handle = int(handle_text, 16)
        if declared:
            current, declared = uuid, False
            found[uuid] = Characteristic(handle, None)
        elif uuid == CHARACTERISTIC_DECLARATION:
            declared = True
        elif uuid in SERVICE_DECLARATIONS:
            current = None
        elif uuid == CCCD and current is not None:
            found[current] = Characteristic(found[current].value, handle)
    return found


def primary_ranges(listing: str) -> dict[str, tuple[int, int]]:
    """Service UUID -> (first, last) handle, from ``gatttool --primary`` (Read By Group
    Type: primary discovery)."""
    found = re.findall(
        r"attr handle = 0x(\w{4}), end grp handle = 0x(\w{4}) uuid: ([0-9a-f-]{36})", listing
    )
    return {uuid: (int(first, 16), int(last, 16)) for first, last, uuid in found}
