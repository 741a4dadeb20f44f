"""Log files: redaction of personal data, 7-day retention (PR-LOGS)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from phoneagent.logs import LOG_NAME, Private, logs_dir, prune_logs, redact, setup_logging
from protocol.settings import Sex, UserProfile


def test_redaction_hides_health_values_macs_names_and_contacts__PR_LOGS() -> None:
    text = redact(
        "hr=72 from F0:F1:F2:F3:F4:F5 (name='Zephyr Watch'), 97.5 % spo2, caller: Alice, "
        f"{UserProfile(30, Sex.MALE, 180, 750)} call +49 170 1234567 mail bob@example.org "
        "seq 1000-2000"
    )
    for secret in ("72", "F0:F1", "Zephyr", "97.5", "Alice", "180", "750", "1234567", "bob@"):
        assert secret not in text, (secret, text)
    assert "seq 1000-2000" in text  # operational numbers stay readable


def test_log_file_is_redacted_and_private__PR_LOGS(tmp_path: Path) -> None:
    logger = logging.getLogger("test.privacy.logs")
    logger.propagate = False
    handler = setup_logging(tmp_path, logger=logger)
    try:
        logger.info("stored %s from %s", "heart_rate=64", "AA:BB:CC:DD:EE:FF")
        logger.info("notification %s", Private("Dinner at 8?"))
        try:
            raise ValueError("weight=82.5 kg")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    path = logs_dir(tmp_path) / LOG_NAME
    # Without each line's date and time, which may hold "64" or "82" by chance.
    content = "\n".join(line.split(" ", 2)[-1] for line in path.read_text().splitlines())
    assert "64" not in content and "AA:BB" not in content and "Dinner" not in content
    assert "82.5" not in content and "ValueError" in content
    assert os.stat(path).st_mode & 0o077 == 0


class _Keep(logging.Handler):
    """Another handler on the same logger, as a host application or pytest's caplog has."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_redaction_leaves_the_record_other_handlers_see_as_it_was(tmp_path: Path) -> None:
    """The file is redacted; a handler after ours still gets the message and traceback."""
    logger = logging.getLogger("test.privacy.logs.shared")
    logger.propagate = False
    ours = setup_logging(tmp_path, logger=logger)
    theirs = _Keep()
    logger.addHandler(theirs)
    try:
        try:
            raise ValueError("AA:BB:CC:DD:EE:FF")
        except ValueError:
            logger.exception("lost %s", "AA:BB:CC:DD:EE:FF")
    finally:
        for handler in (ours, theirs):
            logger.removeHandler(handler)
            handler.close()
    assert theirs.lines[0].startswith("lost AA:BB:CC:DD:EE:FF")
    assert theirs.lines[0].endswith("ValueError: AA:BB:CC:DD:EE:FF")
    written = (logs_dir(tmp_path) / LOG_NAME).read_text()
    assert "AA:BB" not in written and "lost <mac>" in written and "ValueError: <mac>" in written


def test_logs_older_than_7_days_are_deleted_at_start__PR_LOGS(tmp_path: Path) -> None:
    directory = logs_dir(tmp_path)
    directory.mkdir()
    now = time.time()
    for days, name in ((1, LOG_NAME + ".2027-01-14"), (8, LOG_NAME + ".2027-01-07")):
        path = directory / name
        path.write_text("x\n")
        os.utime(path, (now - days * 86400, now - days * 86400))
    gone = prune_logs(directory, now)
    assert [p.name for p in gone] == [LOG_NAME + ".2027-01-07"]
    assert sorted(p.name for p in directory.iterdir()) == [LOG_NAME + ".2027-01-14"]
