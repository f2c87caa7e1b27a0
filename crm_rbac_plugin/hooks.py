"""The host's hooks: the functions a host registers with the extension's decorators.

As Flask-Login keeps its ``user_loader``, the extension keeps each host
function on :attr:`HookDecorators.hooks` (a :class:`Hooks`), set by one
decorator: ``@rbac.workspace_loader``, ``@rbac.unauthorized_handler``,
``@rbac.invited_user_factory``, ``@rbac.user_getter``,
``@rbac.field_serializer``, ``@rbac.mfa_verified``. Each is optional; the plugin's default applies
while a hook is unset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .policy import Decision

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Hooks:
    """The host's functions, each set by one decorator of the extension.

    ``workspace_loader(user)`` returns the workspace id a signed-in user acts
    in (None: the session's, else their first active membership's).
    ``unauthorized(decision, status)`` returns the refusal response.
    ``invited_user(email)`` returns a new, unsaved host user for an accepted
    invitation (None: ``user_model(email=..., name=...)``).
    ``user_getter()`` returns the request's signed-in user or None, for a host
    that signs users in without Flask-Login (None: Flask-Login's
    ``current_user``).
    ``field_serializer(value)`` returns the JSON form of a column value for the
    records API, or ``NotImplemented`` to leave it to the defaults (see
    :mod:`.api.values`).
    ``mfa_verified(user)`` returns when the host's own MFA last checked the
    user in this session, or None (see :mod:`.security.stepup`).
    """

    unauthorized: Callable[[Decision, int], Any]
    workspace_loader: Callable[[Any], Any] | None = None
    invited_user: Callable[[str], Any] | None = None
    user_getter: Callable[[], Any] | None = None
    field_serializer: Callable[[Any], Any] | None = None
    mfa_verified: Callable[[Any], Any] | None = None


class HookDecorators:
    """The decorators of :class:`~.extension.RBAC` that register the host's hooks."""

    hooks: Hooks

    def workspace_loader(self, func: F) -> F:
        """Set how the current workspace id is found for a user in a request.

        ``func(user)`` returns a workspace id; without it the session's
        workspace is used, else the user's first active membership's. The
        answer holds for the rest of the request (it is asked for once per
        user); a view that moves the user elsewhere mid-request calls
        ``crm_rbac_plugin.identity.set_workspace``.
        """
        self.hooks.workspace_loader = func
        return func

    def unauthorized_handler(self, func: F) -> F:
        """Set the refusal response: ``func(decision, status) -> Response``."""
        self.hooks.unauthorized = func
        return func

    def invited_user_factory(self, func: F) -> F:
        """Set how an invitation creates a host user: ``func(email) -> user``.

        The function returns a new, unsaved instance of the user model; the
        plugin adds and flushes it. Without it the plugin builds
        ``user_model(email=email)`` (and ``name`` from the address when the
        model has one).
        """
        self.hooks.invited_user = func
        return func

    def user_getter(self, func: F) -> F:
        """Set how the request's signed-in user is found: ``func() -> user | None``.

        For a host that signs users in without Flask-Login (Flask-HTTPAuth,
        its own token scheme, ...). Without it the plugin reads Flask-Login's
        ``current_user``.
        """
        self.hooks.user_getter = func
        return func

    def field_serializer(self, func: F) -> F:
        """Set the JSON form of column values in the records API: ``func(value)``.

        The function sees every value before the built-in rules and returns a
        JSON-able value, or ``NotImplemented`` to leave the value to them
        (Enum, Decimal, UUID, dates, bytes ...; see :mod:`.api.values`)::

            @rbac.field_serializer
            def money(value):
                return value.to_json() if isinstance(value, Money) else NotImplemented
        """
        self.hooks.field_serializer = func
        return func

    def mfa_verified(self, func: F) -> F:
        """Set how the host's own MFA reports a check: ``func(user) -> datetime | None``.

        For a host that does MFA itself (Flask-Security-Too's two-factor, an
        identity provider's ``amr`` claim ...): the function returns the time
        (UTC) the signed-in user last passed the host's second factor in this
        session, or None. A time counts as enrolled for the workspace's MFA
        policy and as the session's check for step-up, instead of the
        plugin's TOTP::

            @rbac.mfa_verified
            def host_mfa(user):
                return session.get("tf_verified_at")  # whatever the host records
        """
        self.hooks.mfa_verified = func
        return func
