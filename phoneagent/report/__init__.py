"""``phoneagent report``'s work: charts of a store's data as one offline HTML file."""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from phoneagent.errors import AgentUsageError
from phoneagent.report.collect import collect
from phoneagent.report.render import page
from phoneagent.store import Store


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    devices: int
    samples: int


def write_report(
    store: Store, out: Path, device: str | None, since: int | None, until: int | None
) -> Written:
    """Write the report to ``out`` (replacing a file, never a device or a pipe): created
    owner-only (0600) under a temporary name in the same folder and renamed when complete,
    so no partial copy of personal data is left behind and none is ever readable by others."""
    if not out.parent.is_dir():  # said before the store is read, naming the folder
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(out.parent))
    if out.exists() and not out.is_file():  # the rename would replace a device or a pipe
        raise AgentUsageError(f"{out} is not a regular file; give the path of an HTML file.")
    reports = collect(store, device, since, until)
    html = page(reports, since, until)
    fd, partial = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as text:
            text.write(html)
        os.replace(partial, out)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    samples = sum(len(s.times) for r in reports for s in r.series.values())
    return Written(out, len(reports), samples)
