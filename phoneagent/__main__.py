"""``python -m phoneagent``: the CLI, as the agent fleet starts its worker processes."""

from phoneagent.cli import main

main()
