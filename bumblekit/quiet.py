"""Stop Bumble from formatting debug strings nobody will read.

Bumble logs every HCI/L2CAP/ATT packet with f-strings such as
``logger.debug(f"{color('>>>', 'green')} {packet}")``: the f-string, the packet's
``__str__`` and the ANSI colouring run even when debug logging is off, which costs
roughly half of the CPU of a notification burst. We cannot make the f-strings lazy,
but we can make their expensive parts cheap while the ``bumble`` logger is not at
DEBUG: packet ``__str__`` returns the class name and ``color`` returns its text
unchanged. Turning on DEBUG for ``bumble`` brings the full strings back at once.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from bumble import att, colors, hci, l2cap

_bumble_logger = logging.getLogger("bumble")
_installed = False


def _debugging() -> bool:
    return _bumble_logger.isEnabledFor(logging.DEBUG)


def _guarded_str(original: Callable[[Any], str]) -> Callable[[Any], str]:
    @functools.wraps(original)
    def __str__(self: Any) -> str:
        return original(self) if _debugging() else type(self).__name__

    return __str__


def _guarded_color(original: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(original)
    def color(s: str, *args: Any, **kwargs: Any) -> str:
        return original(s, *args, **kwargs) if _debugging() else s

    return color


def _subclasses(root: type) -> list[type]:
    found = [root]
    cls: type
    for cls in root.__subclasses__():
        found.extend(_subclasses(cls))
    return found


def quiet_bumble_debug_strings() -> None:
    """Idempotent; call before building Bumble devices. Packet classes of a Bumble module
    imported after this call keep their stock ``__str__``.

    Also keeps Bumble's warnings (a peer gone mid-exchange, ...) off the terminal of a
    program that configured no logging, where Python's last-resort handler would print
    them between the program's own lines: they reach configured handlers (the agent's
    log files) only."""
    global _installed
    if _installed:
        return
    _installed = True
    _bumble_logger.addHandler(logging.NullHandler())
    for root in (hci.HCI_Packet, att.ATT_PDU, l2cap.L2CAP_PDU):
        for cls in set(_subclasses(root)):
            if "__str__" in vars(cls):
                cls.__str__ = _guarded_str(vars(cls)["__str__"])  # type: ignore[method-assign, assignment]
    # Compare against the stock function saved first: ``bumble.colors`` itself is among
    # the modules rebound, and the modules after it must still be recognised.
    stock = colors.color
    quiet_color = _guarded_color(stock)
    for name, module in tuple(sys.modules.items()):
        if name.startswith("bumble") and getattr(module, "color", None) is stock:
            module.color = quiet_color  # type: ignore[attr-defined]
