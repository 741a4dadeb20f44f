"""The typed face of an SQLCipher connection, for the store's own modules only.

``sqlcipher3`` ships no type hints; these protocols name what ``db`` and ``ledger`` use
of it, so their SQL is checked against one interface instead of ``Any``. Nothing
outside ``phoneagent.store`` gets a connection: every query is a method of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

_T = TypeVar("_T")


class Cursor(Protocol):
    rowcount: int
    lastrowid: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def close(self) -> None: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    in_transaction: bool

    def execute(
        self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ..., /
    ) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def close(self) -> None: ...


class Run(Protocol):
    """How a store runs ``work(connection, now)`` under its lock (``Store._snapshot``)."""

    def __call__(self, work: Callable[[Connection, int], _T], /) -> _T: ...


class Transact(Protocol):
    """``Run`` in a write transaction (``Store._transact``); not ``durable``: without an
    fsync (``Store._write``)."""

    def __call__(self, work: Callable[[Connection, int], _T], /, *, durable: bool = ...) -> _T: ...
