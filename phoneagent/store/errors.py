"""Store failures a person can act on; the CLI prints their message as is, with the
exit code each class carries."""

from __future__ import annotations

from phoneagent.errors import EXIT_DAMAGED, EXIT_KEY, EXIT_UNREACHABLE, AgentError


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


class DamagedStoreError(StoreError):
    """Pages of the database file fail their check (HMAC or b-tree): disk or file damage.

    Its own exit code (README's table): nothing but a rescue helps, and that is not the
    same thing to do as for a wrong key or an unknown device.
    """

    exit_code = EXIT_DAMAGED

    def __init__(self, path: object, detail: str) -> None:
        super().__init__(
            f"The encrypted store {path} is damaged ({detail}). Save "
            "what is still readable with: phoneagent store rescue (it keeps a copy of the "
            "damaged file first, then says what it saved and what it lost)."
        )


class SchemaTooNewError(StoreError):
    """The database was written by a newer phoneagent; opening it could damage it."""


class StoreFullError(StoreError):
    """The disk holding the store is full: the write was rolled back, nothing half-stored.

    Not a damaged store: the same write succeeds once space is freed. Whatever was not
    stored is not acknowledged either, so the watch keeps it until then.
    """


class UnknownDeviceError(StoreError, KeyError):
    """A device address that was never added to the store."""

    exit_code = EXIT_UNREACHABLE

    @classmethod
    def of(cls, address: str) -> UnknownDeviceError:
        """The one message for it, naming the command that adds a watch."""
        return cls(
            f"Device {address} is not in the store (never paired, or forgotten); "
            f"pair it first: phoneagent pair {address}"
        )

    def __str__(self) -> str:
        # KeyError quotes its argument; a message should read as a sentence.
        return str(self.args[0]) if self.args else ""
