"""The package map of ``docs/architecture.md``, checked on the source: who may import whom.

The watch and the agent never import each other; what needs both (the load generator,
the demo) is a harness, and the reference receiver is the back end's. ``phoneagent``'s
command line may name the harness and the receiver only inside the command that runs
them, so importing the agent never loads them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = frozenset(
    {
        "protocol",
        "bumblekit",
        "bluezkit",
        "localsock",
        "clikit",
        "heapkit",
        "watchsim",
        "phoneagent",
        "harness",
        "cloudreceiver",
    }
)
# What each package may import of ours, anywhere in it.
ALLOWED = {
    "protocol": set[str](),
    "bumblekit": set[str](),
    "bluezkit": set[str](),
    "localsock": set[str](),
    "clikit": set[str](),
    "heapkit": set[str](),
    "watchsim": {"protocol", "bumblekit", "bluezkit", "localsock", "clikit", "heapkit"},
    "phoneagent": {"protocol", "bumblekit", "bluezkit", "localsock", "clikit"},
    "cloudreceiver": {"protocol", "phoneagent"},
    "harness": {"protocol", "bumblekit", "localsock", "heapkit", "watchsim", "phoneagent"},
}
# Named by a command of the agent's CLI, inside the function that runs it.
RUN_BY_THE_AGENT_CLI = {"harness", "cloudreceiver"}
# The receiver reads the agent's wire format and endpoints: the contract, nothing more.
RECEIVER_READS = ("phoneagent.upload.payload", "phoneagent.upload.endpoints")


def imports(tree: ast.Module) -> Iterator[tuple[str, bool]]:
    """(module, at the module's top level) for every import of ours in ``tree``."""
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in OURS:
                yield name, id(node) not in nested


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_the_map_allows(package: str) -> None:
    wrong = []
    for path in sources(package):
        for name, top_level in imports(ast.parse(path.read_text(), str(path))):
            top = name.split(".")[0]
            if top == package or top in ALLOWED[package]:
                beyond_the_contract = package == "cloudreceiver" and top == "phoneagent"
                if beyond_the_contract and not name.startswith(RECEIVER_READS):
                    wrong.append(f"{path.relative_to(ROOT)}: {name}")
                continue
            in_agent_cli = path.is_relative_to(ROOT / "phoneagent" / "cli")
            if in_agent_cli and top in RUN_BY_THE_AGENT_CLI and not top_level:
                continue
            wrong.append(f"{path.relative_to(ROOT)}: {name}")
    assert sources(package), f"no sources found for {package}"
    assert not wrong, wrong


def test_only_localsock_opens_a_control_socket() -> None:
    """The watch's and the agent's control channels are spoken through ``localsock`` (and
    each side's own client on it), never by hand."""
    by_hand = [
        str(path.relative_to(ROOT))
        for package in ALLOWED
        if package != "localsock"
        for path in sources(package)
        if "open_unix_connection" in path.read_text()
    ]
    assert not by_hand, by_hand


# What a command module may take from the others: the context, option types, output, and
# the privacy commands' error mapping and notice.
CLI_HELPERS = frozenset(
    f"phoneagent.cli.{name}" for name in ("context", "params", "output", "privacy")
)


def test_cli_modules_share_only_their_helpers() -> None:
    """The CLI parses and prints; what commands share is below it (``phoneagent.services``).
    So a command module takes nothing from another but the CLI's helpers, and no module
    takes a private name of the CLI's."""
    wrong = []
    for path in [*sources("phoneagent/cli"), *sources("harness")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            if not node.module.startswith("phoneagent.cli."):
                continue
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
            in_cli = path.is_relative_to(ROOT / "phoneagent" / "cli")
            if private or (in_cli and node.module not in CLI_HELPERS):
                wrong.append(f"{path.relative_to(ROOT)}: {node.module} {private or ''}")
    assert not wrong, wrong
