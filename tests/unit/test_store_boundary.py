"""Every SQL statement of the agent is a method of its store (``phoneagent/store/``).

A query elsewhere bypasses what the store promises for each one: its lock, damage
reported as ``DamagedStoreError``, a full disk rolled back whole as ``StoreFullError``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import phoneagent
from phoneagent.store import Store

PACKAGE = Path(phoneagent.__file__).parent
_SQL = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|PRAGMA|CREATE|BEGIN|WITH)\b")
_RUNS_SQL = {"execute", "executemany", "executescript", "transact"}


def _sql_outside_the_store() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "store"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _SQL.match(node.value):
                    found.append(f"{path}:{node.lineno}: {node.value[:40]!r}")
            elif isinstance(node, ast.Attribute) and node.attr in _RUNS_SQL:
                found.append(f"{path}:{node.lineno}: .{node.attr}")
    return found


def test_no_sql_outside_the_store() -> None:
    assert _sql_outside_the_store() == []


def test_the_store_has_no_back_door_for_raw_sql() -> None:
    assert not [name for name in ("transact", "read", "conn") if hasattr(Store, name)]
