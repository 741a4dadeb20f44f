"""What both ends need from Bumble beyond its own API, in one place below both.

The watch (``watchsim``) and the agent (``phoneagent``) each run Bumble and must not
import each other: ``quiet`` keeps Bumble from building debug strings nobody reads,
``controller`` builds virtual controllers with the buffers of a current LE chip.
"""
