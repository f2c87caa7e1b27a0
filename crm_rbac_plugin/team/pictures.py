"""Profile pictures: a member sets or removes their own, colleagues see it.

A picture belongs to the account (one row per user, see
:mod:`..models.pictures`) and is set or removed only by its owner, from
their own profile: never by an admin, and never while viewing as someone
(view-as refuses every write request before its view runs, and every flush
besides). What is stored is the plugin's own encoding of the upload
(:mod:`..images`), never the upload itself.

Who sees a picture: a signed-in member who is active in the current
workspace sees the pictures of the workspace's active members, themselves
included (:func:`shown_picture`). Anything else (no such member, a member of
another workspace, a pending or deactivated one, a member without a picture)
is the same "no picture", which the route answers with one 404, so the
answer never tells whether an id exists elsewhere.

Setting and removing are audited (``profile_picture.set``,
``profile_picture.removed``) in the workspace where the member did it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, current_app, request, url_for

from ..config import setting
from ..images import PictureRejected, encode_picture
from ..models import utcnow
from ..policy import Access
from ..roles.locks import concurrent_change_refused

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["API_PICTURE_ENDPOINT", "PICTURE_ENDPOINT", "picture_urls", "remove_picture", "send_picture",
           "set_picture", "shown_picture"]

#: The routes serving a member's picture: the pages' (``settings.picture_views``), answering
#: a browser's session, and the JSON API's (``api.members``), answering an API token.
PICTURE_ENDPOINT = "rbac_settings.member_picture"
API_PICTURE_ENDPOINT = "rbac_api.member_picture"


def set_picture(rbac: RBACProtocol, membership: Any, stream: IO[bytes] | None, *,
                field: str = "picture") -> Any:
    """Make the upload in ``stream`` ``membership``'s user's picture (the caller commits).

    Raises :class:`..images.PictureRejected` naming ``field``: no file, an
    empty one, one over ``RBAC_PROFILE_PICTURE_MAX_BYTES`` (413), or bytes
    that are not a PNG, JPEG, GIF or WebP picture within
    ``RBAC_PROFILE_PICTURE_MAX_PIXELS``. Nothing is written before every
    check has passed.
    """
    if stream is None:
        raise PictureRejected("Choose a picture to upload.", field=field)
    limit = int(setting("RBAC_PROFILE_PICTURE_MAX_BYTES"))
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PictureRejected(f"The picture is larger than {limit:,} bytes.", field=field,
                              status=413)
    picture = encode_picture(data, field=field,
                             max_pixels=int(setting("RBAC_PROFILE_PICTURE_MAX_PIXELS")),
                             size=int(setting("RBAC_PROFILE_PICTURE_SIZE")))
    model = rbac.models.ProfilePicture
    session = rbac.db.session
    row = session.scalar(sa.select(model).where(model.user_id == membership.user_id))
    if row is None:
        row = model(user_id=membership.user_id)
        session.add(row)
    row.data, row.content_type = picture.data, picture.content_type
    row.digest = hashlib.sha256(picture.data).hexdigest()
    row.updated_at = utcnow()
    # Two first uploads at once both insert: the second meets the one-row-per-user key.
    with concurrent_change_refused("your picture"):
        session.flush()
    rbac.audit("profile_picture.set", workspace_id=membership.workspace_id, resource="members",
               target=membership.display_name, content_type=picture.content_type,
               size=len(picture.data))
    return row


def remove_picture(rbac: RBACProtocol, membership: Any) -> bool:
    """Remove ``membership``'s user's picture (the caller commits); False if there was none."""
    model = rbac.models.ProfilePicture
    session = rbac.db.session
    row = session.scalar(sa.select(model).where(model.user_id == membership.user_id))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    rbac.audit("profile_picture.removed", workspace_id=membership.workspace_id,
               resource="members", target=membership.display_name)
    return True


def _shown(rbac: RBACProtocol, access: Access, membership_ids: list[int], *columns: Any) -> Any:
    """``columns`` of the pictures ``access`` may see among ``membership_ids`` (see the module)."""
    M, P = rbac.models.Membership, rbac.models.ProfilePicture
    return (sa.select(M.id, *columns).join(P, P.user_id == M.user_id)
            .where(M.id.in_(membership_ids), M.workspace_id == access.workspace_id,
                   M.status == "active"))


def shown_picture(rbac: RBACProtocol, access: Access | None, membership_id: int) -> Any:
    """The picture of member ``membership_id`` as ``access`` may see it, or None."""
    if access is None or not access.active:
        return None
    found = rbac.db.session.execute(
        _shown(rbac, access, [membership_id], rbac.models.ProfilePicture)).first()
    return found[1] if found is not None else None


def picture_urls(rbac: RBACProtocol, access: Access | None, memberships: Iterable[Any], *,
                 endpoint: str = PICTURE_ENDPOINT) -> dict[int, str]:
    """``{membership id: picture URL}`` for the members among ``memberships`` (rows or
    ids) whose picture ``access`` sees, in one query; the others show their initials.

    The URL (of ``endpoint``: :data:`PICTURE_ENDPOINT` or :data:`API_PICTURE_ENDPOINT`)
    carries the picture's version, so a new picture is a new URL and no cache
    ever shows the old one.
    """
    ids = [m if isinstance(m, int) else m.id for m in memberships if m is not None]
    if not ids or access is None or not access.active \
            or endpoint not in current_app.view_functions:
        return {}
    stmt = _shown(rbac, access, ids, rbac.models.ProfilePicture.digest)
    return {membership_id: url_for(endpoint, membership_id=membership_id, v=digest[:16])
            for membership_id, digest in rbac.db.session.execute(stmt)}


def send_picture(picture: Any) -> Response:
    """The picture as a response: its stored type, ``nosniff``, never cached.

    ``Cache-Control: private, no-store``, as every response to a signed-in
    user (:func:`..security.enforce.no_store`): a colleague's picture is not
    left in a shared computer's cache after sign-out. The ETag (the digest)
    answers a client that revalidates with 304.
    """
    response = Response(picture.data, mimetype=picture.content_type)
    response.set_etag(picture.digest)
    response.last_modified = picture.updated_at
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)
