"""The receiver's error model: a failure an operator can act on is a ``ReceiverError``
whose class says its exit code, so ``phoneagent cloud-receiver`` prints one line and exits
with it instead of a traceback. The numbers are the agent's (README.md): 1 other error,
2 usage or configuration, 4 unreachable. The receiver is the back end's side and does not
import the agent's error base (``docs/architecture.md``).
"""

from __future__ import annotations

from typing import ClassVar, Final

EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 4


class ReceiverError(Exception):
    """A failure with a message for the operator and the exit code the command ends with."""

    exit_code: ClassVar[int] = EXIT_ERROR


class StoreConfigError(ReceiverError):
    """A database the receiver cannot use as given: a malformed URL, an unknown database
    or user, a refused login."""

    exit_code = EXIT_USAGE


class SchemaTooNewError(ReceiverError):
    """The database was migrated by a newer receiver: this one would misread it."""

    exit_code = EXIT_USAGE

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"the receiver database has schema version {found}, newer than this"
            f" receiver's {supported}: upgrade the receiver"
        )


class StoreRefusedError(ReceiverError):
    """The database refused a statement for a reason retrying cannot cure (a table
    dropped under the receiver, a privilege taken away): the operator must act."""


class StoreUnreachableError(ReceiverError):
    """No database server answers at the address given."""

    exit_code = EXIT_UNREACHABLE
