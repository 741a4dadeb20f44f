"""Phone -> watch relays (notifications, calls, music), each behind its permission.

- ``permissions``: the relay policy, read from and written to the consent ledger;
- ``hub``: what the watches may show, in memory only, pushed to every connected watch;
- ``sources``: the session bus (notifications, MPRIS), the system bus (ModemManager)
  and ``phoneagent inject``;
- ``service.RelayService``: all of it for the daemon, serving the agent's control socket
  (``phoneagent.control``).
"""
