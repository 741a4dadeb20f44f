"""Where the agent keeps its data, and keeping that place private.

Everything personal lives in one encrypted database inside the data directory; the
directory itself is owner-only (0700) so that even file names and sizes stay private.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "phoneagent"
DATABASE_NAME = "phoneagent.db"


def data_dir(
    override: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The data directory: ``override`` (``--data-dir``) or the XDG data home.

    Follows the XDG Base Directory rules: ``$XDG_DATA_HOME/phoneagent`` when that
    variable holds an absolute path, else ``~/.local/share/phoneagent``.
    """
    if override is not None:
        return Path(override).expanduser().absolute()
    environ = os.environ if env is None else env
    xdg = environ.get("XDG_DATA_HOME", "")
    # The spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / APP_NAME


def database_path(directory: Path) -> Path:
    return directory / DATABASE_NAME


def ensure_private_dir(directory: Path) -> int:
    """Create ``directory`` owner-only if missing; returns its permission bits.

    An existing directory is never chmod-ed: a mistaken ``--data-dir ~`` must not
    change the home directory. The caller refuses one that others can read.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return stat.S_IMODE(directory.stat().st_mode)
