"""The agent's one error model: every failure a person can cause or act on is an
``AgentError`` whose class says its exit code, so the CLI needs no table of its own.

Exit codes (README.md, ``phoneagent --help``): 0 ok, 1 other error, 2 usage or
configuration error, 3 missing or wrong database key, 4 device not found or unreachable,
5 pairing lost (run ``phoneagent pair`` again), 6 database damaged (run ``phoneagent store
rescue``), 7 the data dir is in use by another agent process (``phoneagent.instance``).
Errors of other libraries (bleak, aiomqtt, the protocol codecs) are wrapped into these
where they enter (``phoneagent.transport.errors.radio_errors``, ``phoneagent.upload.client``).
"""

from __future__ import annotations

from typing import ClassVar, Final

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_KEY: Final = 3
EXIT_UNREACHABLE: Final = 4
EXIT_PAIRING_LOST: Final = 5
EXIT_DAMAGED: Final = 6
EXIT_BUSY: Final = 7

EXIT_CODES: Final = {
    EXIT_OK: "ok",
    EXIT_ERROR: "error",
    EXIT_USAGE: "usage/configuration",
    EXIT_KEY: "database key",
    EXIT_UNREACHABLE: "device not found or unreachable",
    EXIT_PAIRING_LOST: "pairing lost",
    EXIT_DAMAGED: "database damaged (phoneagent store rescue)",
    EXIT_BUSY: "data dir in use by another agent process",
}


class AgentError(Exception):
    """A failure with a message for the person and the exit code the CLI ends with."""

    exit_code: ClassVar[int] = EXIT_ERROR

    def __str__(self) -> str:
        return super().__str__() or type(self).__name__


class AgentUsageError(AgentError):
    """A value, option or configuration the agent cannot use."""

    exit_code = EXIT_USAGE


class UnreachableError(AgentError):
    """A device that did not answer, or answered with something we cannot use."""

    exit_code = EXIT_UNREACHABLE


class DataDirBusyError(AgentError):
    """Another agent process holds the data dir's store and radio (one data dir, one agent);
    the message names it (pid and command)."""

    exit_code = EXIT_BUSY
