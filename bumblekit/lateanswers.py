"""Let an ATT request be given up without a traceback when its answer is on the way.

Bumble's GATT client waits for a response with ``wait_for`` on a future it clears only
when the waiting task runs again. When that task is cancelled (an engine stopping, a
deadline), ``wait_for`` cancels the future at once; a response that arrives before the
task runs again is then set on a cancelled future, and ``InvalidStateError`` unwinds
through Bumble's packet handler into asyncio's "Exception in callback" log: about 40
lines in the agent's log each time ``phoneagent run`` stops mid-request. Such an answer
goes nowhere here, as it would after the request's own end.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from bumble import att, gatt_client

log = logging.getLogger(__name__)
_installed = False


def _dropping(
    original: Callable[[gatt_client.Client, att.ATT_PDU], None],
) -> Callable[[gatt_client.Client, att.ATT_PDU], None]:
    @functools.wraps(original)
    def on_gatt_pdu(self: gatt_client.Client, att_pdu: att.ATT_PDU) -> None:
        pending = self.pending_response
        if att_pdu.op_code in att.ATT_RESPONSES and pending is not None and pending.done():
            log.debug("no one waits for this answer any more: %s", type(att_pdu).__name__)
            return
        original(self, att_pdu)

    return on_gatt_pdu


def drop_late_answers() -> None:
    """Idempotent; patches Bumble's GATT client class for every connection."""
    global _installed
    if _installed:
        return
    _installed = True
    gatt_client.Client.on_gatt_pdu = _dropping(gatt_client.Client.on_gatt_pdu)  # type: ignore[method-assign, assignment]
