"""Real processes in the states people leave them in: Ctrl-C (SIGINT) at a prompt, a
watch that goes away while ``pair`` asks for its passkey. Each ends at once, with its
message and its exit code, never a traceback and never a wait for Enter."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from phoneagent.errors import EXIT_BUSY, EXIT_UNREACHABLE
from phoneagent.logs import LOG_NAME, logs_dir
from tests.processes import WAIT, Watch, kill, line, prompt
from tests.system.test_two_processes import on_air


async def test_ctrl_c_at_the_passkey_prompt_ends_pair(air: str, tmp_path: Path) -> None:
    """The prompt was read in ``asyncio.to_thread``, whose worker the interpreter joins
    at exit: ``pair`` hung after Ctrl-C until a line was typed."""
    phone, air_address = on_air(air, tmp_path)
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    pair = await phone._spawn("pair", address)
    try:
        await prompt(pair, r"Passkey shown on", WAIT)
        pair.send_signal(signal.SIGINT)  # stdin stays open, as a terminal's does
        assert await asyncio.wait_for(pair.wait(), WAIT) == 1
        assert pair.stderr is not None
        err = (await pair.stderr.read()).decode()
        assert "Aborted!" in err and "Traceback" not in err, err
    finally:
        await kill(pair)
        await kill(watch)


def _has(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text()


async def _logged(log: Path, text: str) -> None:
    """Until the agent's log file has a line with ``text`` (it writes nothing else out)."""
    async with asyncio.timeout(WAIT):
        while not _has(log, text):  # noqa: ASYNC110 - another process writes it
            await asyncio.sleep(0.05)


async def test_a_watch_gone_while_pair_asks_through_run(air: str, tmp_path: Path) -> None:
    """With ``run`` pairing for it, the answer typed after the watch went away got "the
    data dir is in use ... no pairing question is waiting" (exit 7), not why (exit 4)."""
    phone, air_address = on_air(air, tmp_path)
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    async with phone.daemon():
        pair = await phone._spawn("pair", address)
        try:
            await prompt(pair, r"Passkey shown on", WAIT)
            await kill(watch)
            await _logged(logs_dir(phone.data_dir) / LOG_NAME, "pairing for `pair` failed")
            _, err = await asyncio.wait_for(pair.communicate(b"123456\n"), WAIT)
            assert pair.returncode == EXIT_UNREACHABLE, err.decode()
            assert b"disconnected" in err and b"Traceback" not in err
        finally:
            await kill(pair)
            await kill(watch)


async def test_ctrl_c_at_a_pair_through_run_frees_its_pairing(air: str, tmp_path: Path) -> None:
    """The running agent waited two minutes for the answer of a ``pair`` stopped with
    Ctrl-C: the next ``pair`` was refused (exit 7, "it is pairing another watch now")."""
    phone, air_address = on_air(air, tmp_path)
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    try:
        async with phone.daemon():
            pair = await phone._spawn("pair", address)
            try:
                await prompt(pair, r"Passkey shown on", WAIT)
                await line(watch, r"PASSKEY \d{6}")  # this attempt's, not typed
                pair.send_signal(signal.SIGINT)
                assert await asyncio.wait_for(pair.wait(), WAIT) == 1
            finally:
                await kill(pair)
            again = await phone._spawn("pair", address)
            try:  # no passkey typed: taken by the agent, it ends at the watch or the prompt
                _, err = await asyncio.wait_for(again.communicate(b""), WAIT)
            finally:
                await kill(again)
            assert again.returncode != EXIT_BUSY, err.decode()
            assert b"pairing another watch" not in err and b"Traceback" not in err
    finally:
        await kill(watch)


async def test_a_mistyped_passkey_is_asked_again(air: str, tmp_path: Path) -> None:
    """Sent as typed, "abc" or "12345²" (a digit to ``str.isdigit``, not to ``int``)
    failed the pairing: "ProtocolError(smp/PASSKEY_ENTRY_FAILED [0x1])", exit 4."""
    phone, air_address = on_air(air, tmp_path)
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    pair = await phone._spawn("pair", address)
    try:
        assert pair.stdin is not None
        await prompt(pair, r"Passkey shown on", WAIT)
        for typo in ("abc", "12345²", "1234567"):
            pair.stdin.write(typo.encode() + b"\n")
            await prompt(pair, r"the 6 digits the watch shows\.\nPasskey shown on .*: ", WAIT)
        shown = await line(watch, r"PASSKEY (\d{6})")
        out, err = await asyncio.wait_for(pair.communicate(shown[1].encode() + b"\n"), WAIT)
        assert pair.returncode == 0, err.decode()
        assert b"Paired with" in out and b"Traceback" not in err
    finally:
        await kill(pair)
        await kill(watch)


async def test_a_wrong_passkey_says_what_to_do(air: str, tmp_path: Path) -> None:
    """A wrong passkey ended ``pair`` with "ProtocolError(smp/CONFIRM_VALUE_FAILED [0x4])"."""
    phone, air_address = on_air(air, tmp_path)
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    pair = await phone._spawn("pair", address)
    try:
        await prompt(pair, r"Passkey shown on", WAIT)
        shown = int((await line(watch, r"PASSKEY (\d{6})"))[1])
        wrong = f"{(shown + 1) % 1_000_000:06d}\n".encode()
        _, err = await asyncio.wait_for(pair.communicate(wrong), WAIT)
        assert pair.returncode == EXIT_UNREACHABLE, err.decode()
        assert b"the passkey did not match" in err and b"Traceback" not in err, err.decode()
    finally:
        await kill(pair)
        await kill(watch)
