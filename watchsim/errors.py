"""The watch's one error model: a failure a person can cause or act on is a
``WatchsimError`` whose class says the exit code ``watchsim`` ends with (README.md):
0 ok, 1 the watch cannot start or act, 2 a usage error (unknown scenario, a ``ctl``
command that is not one)."""

from __future__ import annotations

from typing import ClassVar, Final

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2


class WatchsimError(Exception):
    """A failure with a message for the person and the exit code the CLI ends with."""

    exit_code: ClassVar[int] = EXIT_ERROR


class WatchsimUsageError(WatchsimError):
    """A value, option or command the watch cannot use."""

    exit_code = EXIT_USAGE
