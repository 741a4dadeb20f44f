"""Store failures a person can act on; the CLI prints their message as is, with the
exit code each class carries."""

from __future__ import annotations

from phoneagent.errors import EXIT_KEY, EXIT_UNREACHABLE, AgentError


class StoreError(AgentError):
    """Base of every error the store raises on purpose."""


class NoKeyError(StoreError):
    """No usable key from any source."""

    exit_code = EXIT_KEY


class KeyFileError(NoKeyError):
    """The key file is missing, unreadable, empty or readable by others."""


class UnsafeDirectoryError(StoreError):
    """The data directory is readable or writable by other users."""


class WrongKeyError(StoreError):
    """The file looks like an encrypted database but the key does not open it."""

    exit_code = EXIT_KEY


class NotADatabaseError(StoreError):
    """The file is not an encrypted database at all (plain SQLite, text, truncated, ...)."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer phoneagent; opening it could damage it."""


class UnknownDeviceError(StoreError, KeyError):
    """A device address that was never added to the store."""

    exit_code = EXIT_UNREACHABLE

    def __str__(self) -> str:
        # KeyError quotes its argument; a message should read as a sentence.
        return str(self.args[0]) if self.args else ""
