"""What the lower layers may use of the extension object.

Every module below :mod:`.extension` receives the :class:`~.extension.RBAC`
instance as an argument (or reaches it through :data:`.proxies.current_rbac`)
and types it as :class:`RBACProtocol`. They never import the extension
module, not even for a type hint, so the import graph has no cycle: the
extension imports its services and blueprints to wire them, and they depend
only on this description of it.

:class:`Hooks` holds the functions a host registers with the extension's
decorators (``@rbac.workspace_loader``, ``@rbac.unauthorized_handler``,
``@rbac.invited_user_factory``, ``@rbac.user_getter``, ``@rbac.field_serializer``),
as Flask-Login keeps its ``user_loader``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

if TYPE_CHECKING:
    from .models import Models
    from .policy import Access, Decision
    from .query import StatementMemo
    from .registry import Registry, Resource


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
    """

    unauthorized: Callable[[Decision, int], Any]
    workspace_loader: Callable[[Any], Any] | None = None
    invited_user: Callable[[str], Any] | None = None
    user_getter: Callable[[], Any] | None = None
    field_serializer: Callable[[Any], Any] | None = None


class AppState(Protocol):
    """What one Flask app keeps of the extension (``app.extensions["rbac"]``)."""

    rbac: RBACProtocol
    cache: Any  # an .access_cache.AccessCache; the core does not import it


class RBACProtocol(Protocol):
    """The extension object as the services, enforcement and blueprints see it."""

    SYSTEM: Any
    db: Any
    user_model: type
    models: Models
    registry: Registry
    hooks: Hooks
    statements: StatementMemo

    @property
    def state(self) -> AppState: ...

    @staticmethod
    def config(key: str) -> Any: ...

    @staticmethod
    def user_pk(user: Any) -> Any: ...

    # identity
    def current_workspace_id(self) -> Any: ...
    def load_user_from_request(self, request: Any) -> Any: ...
    def load_user(self, user_id: Any, *, column: Any = None) -> Any: ...
    def access_for(self, membership: Any) -> Access | None: ...
    def resolve_context(self) -> Any: ...
    def current_access(self) -> Access | None: ...
    def system(self) -> AbstractContextManager[None]: ...
    def as_member(self, membership: Any) -> AbstractContextManager[Access]: ...

    # decisions
    def decide(self, access: Access | None, action: str, resource: str, record: Any = None,
               **kwargs: Any) -> Decision: ...
    def explain(self, action: str, resource: str | None = None, record: Any = None,
                **kwargs: Any) -> Decision: ...
    def can(self, action: str, resource: str | None = None, record: Any = None,
            **kwargs: Any) -> bool: ...
    def hidden_fields(self, resource: str, **kwargs: Any) -> frozenset[str]: ...
    def readonly_fields(self, resource: str, **kwargs: Any) -> frozenset[str]: ...
    def visible_fields(self, resource: str, fields: Any, **kwargs: Any) -> Any: ...
    def redact(self, resource: str, record: Any, **kwargs: Any) -> dict[str, Any]: ...
    def label(self, record: Any, field: str | None = None) -> str: ...
    def parent_loader(self, db_session: Any) -> Callable[[Resource, Any], Any]: ...
    def criteria(self, access: Access | None, resource: str | Resource, action: str = "view",
                 **kwargs: Any) -> Any: ...

    # refusals, audit and signals
    def refusal(self, decision: Decision, status: int = 403) -> Any: ...
    def refuse(self, decision: Decision, status: int = 403) -> NoReturn: ...
    def signal_denied(self, access: Access | None, action: str, resource: str, record: Any,
                      reason: str) -> None: ...
    def signal_policy_changed(self, workspace_ids: list[int], objects: list[Any]) -> None: ...
    def audit(self, action: str, **details: Any) -> Any: ...
    def audit_export(self, resource: str, rows_by_workspace: dict[Any, int], *, target: str,
                     **detail: Any) -> None: ...
    def shared_from(self, record: Any, **kwargs: Any) -> Any: ...


__all__ = ["AppState", "Hooks", "RBACProtocol"]
