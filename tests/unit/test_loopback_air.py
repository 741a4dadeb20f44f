"""Whatever runs watch and agent in one process runs them on the air production runs.

``new_link()`` (an ``IndexedLink``) is the air of ``watchsim air``, the fleets and the
in-process watch. Bumble's bare ``LocalLink()`` hands advertisements and packets out
differently, so a test, the demo or a benchmark built on it would show what production
does not do (issue 18 finding 9).
"""

from __future__ import annotations

import ast

from tests.unit.test_layers import OURS, ROOT

# Every folder of ours that holds Python; the BlueZ VM's own link is a subclass, not a call.
FOLDERS = (*sorted(OURS), "tests", "benchmarks", "scripts")


def builds_a_bare_local_link(tree: ast.Module) -> list[int]:
    """The lines that call ``LocalLink()`` itself (code in strings is another process's)."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "LocalLink")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "LocalLink")
        )
    ]


def test_nothing_builds_a_bare_bumble_local_link() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line in builds_a_bare_local_link(ast.parse(path.read_text(), str(path)))
    ]
    assert not found, f"use watchsim.peripheral.bumble_adapter.new_link() instead: {found}"
