"""Asking for approval after a GET reached the gate: a signed form, then a POST.

A GET records nothing (:class:`.gate.ApprovalRequired`), so an export over
the threshold, which is a link, answers with a page that offers to ask for
it. The page's form carries what the gate would have recorded as a token
signed with the app's secret key (:func:`token_for`): the operation, its
payload, row count and summary, and the member it was computed for. The
POST (:func:`ask`) checks the signature, its age and that the member asking
is that member, then records the request as the gate does, with the reason
given in the form. A member can only ever ask for what a page of their own
computed for them, and a link alone never files a request in their name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import gate
from ..audit.events import jsonable
from ..errors import ValidationError
from ..policy import Access
from .requests import record

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["MAX_AGE_SECONDS", "ask", "token_for"]

#: How long the page's offer stands: the page is read, a reason typed, then sent.
MAX_AGE_SECONDS = 3600
_SALT = "rbac-approval-ask"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=_SALT)


def token_for(actor: Access, exc: gate.ApprovalRequired) -> str:
    """The signed offer of the request ``exc`` describes, for ``actor`` only."""
    return _serializer().dumps({
        "workspace_id": actor.workspace_id, "membership_id": actor.membership_id,
        "operation": exc.operation, "payload": jsonable(exc.payload), "count": exc.count,
        "summary": exc.summary})


def ask(rbac: RBACProtocol, actor: Access | None, token: Any, reason: str) -> NoReturn:
    """Record the request the signed ``token`` offers; raises :class:`.gate.ApprovalPending`.

    A token that is not one, is older than :data:`MAX_AGE_SECONDS` or was
    signed for another member (or workspace) is a 400 naming ``token``.
    """
    try:
        offer = _serializer().loads(str(token or ""), max_age=MAX_AGE_SECONDS)
    except BadSignature:
        raise ValidationError("This offer to ask for approval is not valid or has expired: "
                              "go back to the page and ask again.", field="token") from None
    if (actor is None or not isinstance(offer, dict) or offer.get("operation") not in gate.OPERATIONS
            or (offer.get("workspace_id"), offer.get("membership_id"))
            != (actor.workspace_id, actor.membership_id)):
        raise ValidationError("This offer to ask for approval was made for someone else.",
                              field="token")
    record(rbac, actor, offer["operation"], dict(offer.get("payload") or {}), offer.get("count"),
           str(offer.get("summary") or gate.OPERATIONS[offer["operation"]]), reason)
