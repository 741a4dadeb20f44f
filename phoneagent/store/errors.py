"""Store failures a person can act on; the CLI prints their message as is."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class NoKeyError(StoreError):
    """No usable key from any source."""


class KeyFileError(NoKeyError):
    """The key file is missing, unreadable, empty or readable by others."""


class UnsafeDirectoryError(StoreError):
    """The data directory is readable or writable by other users."""


class WrongKeyError(StoreError):
    """The file looks like an encrypted database but the key does not open it."""


class NotADatabaseError(StoreError):
    """The file is not an encrypted database at all (plain SQLite, text, truncated, ...)."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer phoneagent; opening it could damage it."""


class StoreFullError(StoreError):
    """The disk holding the store is full: the write was rolled back, nothing half-stored.

    Not a damaged store: the same write succeeds once space is freed. Whatever was not
    stored is not acknowledged either, so the watch keeps it until then.
    """


class UnknownDeviceError(StoreError, KeyError):
    """A device address that was never added to the store."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a message should read as a sentence.
        return str(self.args[0]) if self.args else ""
