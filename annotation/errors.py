"""Business-rule errors raised by services.

One exception handler (``annotation/api/exceptions.py``) maps each class to an HTTP status, so a
service never thinks about HTTP and a view never invents a message.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``message`` tells the caller what to fix; ``code``, when set, tells a client
    program which case this is (sent beside the message)."""

    status_code = 400
    code = ""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    status_code = 400


class NotFound(DomainError):
    """Also used across projects: another project's data is 'not found', never 'forbidden'."""

    status_code = 404


class PermissionDenied(DomainError):
    status_code = 403


class RaterExcluded(PermissionDenied):
    """A manager has excluded the rater: final until they restore them (not a session problem,
    so a client must not retry it as one)."""

    code = "excluded"


class Conflict(DomainError):
    status_code = 409


class NoTaskAvailable(DomainError):
    """The queue has nothing for this rater right now (not an error for the UI, but no content)."""

    status_code = 404
