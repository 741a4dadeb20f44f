"""The agent's log file on a disk that fills: lines are lost, the terminal stays quiet."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from phoneagent.logs import LOG_NAME, LOGS_DIR, setup_logging
from tests.disk import fill


def test_a_full_disk_prints_no_logging_traceback(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("test.logs.full")
    logger.propagate = False
    handler = setup_logging(small_disk, logger=logger)
    try:
        filler = fill(small_disk)
        for n in range(2000):  # more than any buffer: writes reach the full disk
            logger.warning("line %d while the disk is full", n)
        assert capsys.readouterr().err == ""
        filler.unlink()
        logger.warning("room again")
        handler.flush()
        assert "room again" in (small_disk / LOGS_DIR / LOG_NAME).read_text()
    finally:
        logger.removeHandler(handler)
        handler.close()
