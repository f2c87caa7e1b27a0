"""The settings blueprint and what every one of its pages uses.

Every page acts in the current member's workspace (:func:`acting_access`);
an id from another workspace is a 404 (:func:`not_found`).

A page that changes something runs the change through :func:`attempt`: the
service layer decides and refuses with :class:`~..errors.ValidationError`
(400, or the error's own ``status``) or :class:`~..errors.PermissionDenied`
(403); the change is committed at once when it succeeds, so a page writes
all of its change or nothing, and a refusal is rolled back and shown where
it belongs (see :func:`show_refusal`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import Blueprint, flash

from .. import inputs, pages, queries
from ..errors import PermissionDenied, ValidationError
from ..pages import acting_access, not_found
from ..proxies import current_rbac

T = TypeVar("T")

bp = Blueprint("rbac_settings", __name__)

inputs.refuse_out_of_range(bp)  # a too-large number is a 400 page, not a 500
bp.context_processor(pages.layout_context)
# Scopes in words on every page ("own" -> "own records and unassigned ones" for
# view while RBAC_UNOWNED_VISIBLE is on), as a global and as a filter.
bp.add_app_template_global(queries.scope_label, "scope_label")
bp.add_app_template_filter(queries.scope_label, "scope_label")

#: What a service raises to refuse a change, with the message to show.
Refusal = ValidationError | PermissionDenied


def membership_or_404(membership_id: int) -> Any:
    """The membership ``membership_id`` of the current workspace, or a 404."""
    membership = queries.membership_in(current_rbac, acting_access().workspace_id, membership_id)
    return membership if membership is not None else not_found()


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render ``rbac/settings/<template>`` with ``status``."""
    return pages.render(f"rbac/settings/{template}", status, **context)


def add_error(field: Any, message: str) -> None:
    """Show ``message`` under a form input."""
    field.errors = [*field.errors, message]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What :func:`attempt` did: the change's ``value``, or the ``error`` shown."""

    value: T | None = None
    error: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> int:
        """The page's status: 200, the ValidationError's own (400, 409 ...) or 403."""
        if isinstance(self.error, ValidationError):
            return self.error.status
        return 200 if self.error is None else 403


def attempt(change: Callable[[], T], form: Any = None, *, commit: bool = True,
            fallback: Any = None, errors: list[str] | None = None,
            place: Callable[[Refusal], None] | None = None) -> Outcome[T]:
    """Run ``change`` and commit it; if a service refuses, roll back and show why.

    ``commit=False`` is for a preview, which writes nothing even when it
    succeeds. A refusal is shown as :func:`show_refusal` says, or by
    ``place`` for a page whose inputs are not named as the service names them::

        outcome = attempt(lambda: roles.add_conflict(rbac, access, a, b), form,
                          errors=page_errors)
        if outcome.ok:
            return redirect(url_for(".conflicts"))
        return render("conflicts.html", outcome.status, ...)
    """
    session = current_rbac.db.session
    try:
        value = change()
        if commit:
            session.commit()
    except (ValidationError, PermissionDenied) as exc:
        session.rollback()
        if place is not None:
            place(exc)
        else:
            show_refusal(exc, form, fallback=fallback, errors=errors)
        return Outcome(error=exc)
    return Outcome(value=value)


def show_refusal(exc: Refusal, form: Any = None, *, fallback: Any = None,
                 errors: list[str] | None = None) -> None:
    """Show a service's refusal on the page, in the first place that applies:

    1. the input of ``form`` that the error names (``exc.field``);
    2. for a PermissionDenied, which refuses the action and not an input, the
       page's list of ``errors`` when it has one;
    3. the ``fallback`` input (the one the page's change is about);
    4. the page's ``errors``;
    5. a flashed message, for a page that redirects.
    """
    target = form._fields.get(exc.field or "") if form is not None else None
    if target is None and not (isinstance(exc, PermissionDenied) and errors is not None):
        target = fallback
    if target is not None:
        add_error(target, exc.message)
    elif errors is not None:
        errors.append(exc.message)
    else:
        flash(exc.message, "error")
