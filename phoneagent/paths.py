"""Where the agent keeps its data, and keeping that place private.

Everything personal lives in one encrypted database inside the data directory; the
directory itself is owner-only (0700) so that even file names and sizes stay private.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

from phoneagent.errors import AgentUsageError

APP_NAME = "phoneagent"
DATABASE_NAME = "phoneagent.db"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``override`` (``--data-dir``) or the user data dir.

    On Linux that is ``$XDG_DATA_HOME/phoneagent`` when the variable holds an absolute
    path (the XDG spec ignores relative ones), else ``~/.local/share/phoneagent``.
    """
    if override is not None:
        return Path(override).expanduser().absolute()
    return platformdirs.user_data_path(APP_NAME)


def database_path(directory: Path) -> Path:
    return directory / DATABASE_NAME


def ensure_private_dir(directory: Path) -> int:
    """Create ``directory`` owner-only if missing; returns its permission bits.

    An existing directory is never chmod-ed: a mistaken ``--data-dir ~`` must not
    change the home directory. The caller refuses one that others can read.
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:  # mkdir says only "File exists"
        raise AgentUsageError(f"{directory} is a file, not a directory (--data-dir)") from None
    return stat.S_IMODE(directory.stat().st_mode)
