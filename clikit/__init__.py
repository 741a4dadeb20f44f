"""What both command lines (``watchsim`` and ``phoneagent``) share: how a command ends when
its output cannot be written for a reason outside it (a reader that left, a full disk)."""

from __future__ import annotations

from clikit.output import OutputEndsGroup, output_failure

__all__ = ["OutputEndsGroup", "output_failure"]
