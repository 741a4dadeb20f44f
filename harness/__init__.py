"""Harnesses: what drives both sides at once, so neither side has to know the other.

``watchsim`` and ``phoneagent`` never import each other; the load generator (one agent
per watch of a ``watchsim fleet``, ``fleet`` and ``fleetsplit``) and the loopback demo
(``demo``) need both, so they live here, beside the tests and benchmarks that do the
same. ``phoneagent fleet`` and ``phoneagent demo`` parse their options in
``phoneagent.cli`` and import this package only when they run (``docs/architecture.md``).
"""
