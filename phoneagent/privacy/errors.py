"""Refusals of the privacy rules; the message tells the person what to do instead."""

from __future__ import annotations

from phoneagent.errors import EXIT_USAGE, AgentError


class PrivacyError(AgentError):
    """Base of every refusal in ``phoneagent.privacy``."""


class UnderAgeError(PrivacyError):
    """The person is below the minimum age of their region (PR-MINOR)."""


class AccountError(PrivacyError):
    """The operation needs an account (or needs none) and the state is the other one."""


class UnknownSubjectError(PrivacyError, ValueError):
    """A consent subject that is not in the documented list."""

    exit_code = EXIT_USAGE
