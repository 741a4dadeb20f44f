"""Where the database key comes from.

Order of precedence (the first source that is present wins; a later one is never
consulted, so a stale environment variable cannot silently override a key file):

1. a key file given explicitly (``--key-file``),
2. the ``PHONEAGENT_DB_KEY`` environment variable,
3. the system keyring (service ``phoneagent``, user = the data directory), only when
   the optional ``keyring`` package is importable and its backend answers,
4. an interactive prompt (a callable supplied by the CLI).

Key material of exactly 64 hex digits is a raw 256-bit key (no key derivation, so
opening is fast); anything else is a passphrase that SQLCipher stretches with PBKDF2.
The same rule holds for every source, so ``PHONEAGENT_DB_KEY=$(cat keyfile)`` works.
"""

from __future__ import annotations

import importlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoneagent.store.errors import KeyFileError, NoKeyError

ENV_VAR = "PHONEAGENT_DB_KEY"
KEYRING_SERVICE = "phoneagent"

_RAW_KEY = re.compile(r"[0-9a-fA-F]{64}")

# (message, confirm) -> passphrase; confirm asks twice, used when creating a database.
PromptFn = Callable[[str, bool], str]


@dataclass(frozen=True, slots=True)
class DbKey:
    """Key material; ``repr`` never shows it, so it cannot leak into logs or tracebacks."""

    material: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.material:
            raise NoKeyError("The database key is empty.")
        if "\x00" in self.material:
            raise NoKeyError("The database key contains a NUL character.")

    @property
    def is_raw(self) -> bool:
        return _RAW_KEY.fullmatch(self.material) is not None

    def pragma_value(self) -> str:
        """The right-hand side of ``PRAGMA key`` (pragmas cannot take bound parameters)."""
        if self.is_raw:
            return f"\"x'{self.material}'\""
        return "'" + self.material.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    key: DbKey
    source: str  # "key file <path>", "environment", "keyring" or "prompt": for messages and audit


def create_key_file(path: Path) -> DbKey:
    """Write a fresh random raw key to ``path`` (0600, must not exist yet).

    A plaintext key on disk is only as safe as the disk: callers (the demo) must tell
    the user that they did this.
    """
    material = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(material + "\n")
    return DbKey(material)


def read_key_file(path: Path) -> DbKey:
    """Read a key file, refusing one that other users could read (as ssh does).

    Surrounding whitespace (the trailing newline an editor adds) is not part of the key.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise KeyFileError(f"Cannot read the key file {path}: {e.strerror}.") from e
    except UnicodeDecodeError as e:
        raise KeyFileError(f"The key file {path} is not UTF-8 text.") from e
    if mode & 0o077:
        raise KeyFileError(
            f"The key file {path} is accessible by other users (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )
    material = text.strip()
    if not material:
        raise KeyFileError(f"The key file {path} is empty.")
    return DbKey(material)


def _keyring_lookup(username: str) -> str | None:
    """The stored key, or None when keyring is missing, has no usable backend, or has no entry."""
    try:
        keyring: Any = importlib.import_module("keyring")
    except ImportError:
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, username)
    # Backends fail in backend-specific ways (no D-Bus session, locked collection, no
    # backend at all); any of them just means this source is unavailable.
    except Exception:
        return None
    return value if isinstance(value, str) and value else None


def resolve_key(
    data_dir: Path,
    *,
    key_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    prompt: PromptFn | None = None,
    use_keyring: bool = True,
    new_database: bool = False,
) -> ResolvedKey:
    """Find the key by the documented precedence, or raise ``NoKeyError`` saying how to give one."""
    if key_file is not None:
        return ResolvedKey(read_key_file(key_file), f"key file {key_file}")
    environ = os.environ if env is None else env
    from_env = environ.get(ENV_VAR)
    if from_env:
        return ResolvedKey(DbKey(from_env), "environment")
    if use_keyring:
        from_keyring = _keyring_lookup(str(data_dir))
        if from_keyring is not None:
            return ResolvedKey(DbKey(from_keyring), "keyring")
    if prompt is not None:
        verb = "Choose" if new_database else "Enter"
        answer = prompt(
            f"{verb} the passphrase for the encrypted store in {data_dir}", new_database
        )
        return ResolvedKey(DbKey(answer), "prompt")
    raise NoKeyError(
        f"No key for the encrypted store in {data_dir}: pass --key-file, set {ENV_VAR}, "
        f"store one in the system keyring (service {KEYRING_SERVICE!r}, user {str(data_dir)!r}) "
        "or run interactively."
    )
