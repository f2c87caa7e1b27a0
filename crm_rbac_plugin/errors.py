"""Exceptions raised by the extension.

They carry a human-readable message so that views, the CLI and the JSON API
can show why something was refused without inventing their own wording.
"""

from __future__ import annotations


class RBACError(Exception):
    """Base class of every error raised by crm_rbac_plugin."""


class ConfigurationError(RBACError):
    """The host application declared something the extension cannot use."""


class UnknownResource(RBACError, LookupError):
    """A resource or action name that is not registered was used."""


class InvalidCondition(RBACError, ValueError):
    """A record condition names an unknown field or operator, or a bad value."""


class NoAccessContext(RBACError):
    """A protected query ran with no member and no explicit system context.

    Outside a request nothing tells the extension whose data may be read, so
    protected queries fail closed: wrap trusted code in ``rbac.system()`` or
    ``rbac.as_member(membership)``.
    """


class PermissionDenied(RBACError):
    """The current member may not perform an action.

    Raised by the flush guard and by service functions; the decorators turn it
    into a 403 (or 404 where the record must not be disclosed).
    """

    def __init__(self, message: str, *, resource: str | None = None,
                 action: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource
        self.action = action
        self.field = field


class ValidationError(RBACError, ValueError):
    """Input that cannot be accepted (a 400): names the offending ``field``."""

    #: The HTTP status a view answers with.
    status: int = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class LinkedRecords(PermissionDenied):
    """A delete refused because the database would change records the member may not (a 409).

    Raised by the flush guard (:mod:`.dependants`); the message says how many
    linked records of which kind stand in the way.
    """

    status = 409


class RuleConflict(ValidationError):
    """A change that would break a standing rule of the workspace (a 409).

    The input is well formed, but the workspace's state forbids the change,
    such as taking away the last role in force of a member; the message names
    the rule and what to do first.
    """

    status = 409


class TooManyAttempts(ValidationError):
    """An attempt refused by the sign-in throttle (a 429): the input is not even checked.

    The message says how long to wait; ``field`` names the input the
    throttle guards (a password).
    """

    status = 429


class QuotaExceeded(RuleConflict):
    """A change that would pass a limit of the plan or of a role (a 409).

    ``limit`` names the limit (``"seats"`` or ``"<resource>.max_records"``),
    ``allowed`` and ``used`` give its figures, so pages, the API and the CLI
    say which limit was met and by how much.
    """

    def __init__(self, message: str, *, limit: str, allowed: int, used: int) -> None:
        super().__init__(message, field=limit)
        self.limit = limit
        self.allowed = allowed
        self.used = used
