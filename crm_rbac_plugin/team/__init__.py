"""Team management: invitations, member lifecycle, departments, record reassignment.

Plain functions in the style of :mod:`..roles`: each takes the *actor* (the
:class:`~..policy.Access` of whoever asks), refuses with
:class:`~..errors.PermissionDenied` (403) or :class:`~..errors.ValidationError`
(400) before changing anything, adds to the session and flushes; the caller
commits. The settings pages (:mod:`..settings.team_views`) and the
``flask rbac members`` commands are thin wrappers over them.

One module per concern; this package re-exports their public names, so
``from crm_rbac_plugin import team; team.invite(...)`` is the way to call them:

- :mod:`.checks`: the checks and look-ups every service shares;
- :mod:`.invitations`: invite, resend, revoke, accept;
- :mod:`.mail`: the invitation and password-reset emails;
- :mod:`.lifecycle`: deactivate, reactivate, a member's API tokens (issued, revoked);
- :mod:`.departments`: departments, per-member visibility, manager assignments;
- :mod:`.reassignment`: moving records to a new owner;
- :mod:`.profile`: a member's own name, password and notifications;
- :mod:`.password_reset`: the forgotten password's reset link, by mail;
- :mod:`.pictures`: a member's own profile picture, and who sees it;
- :mod:`.listing`: the filtered, sorted and paged members list;
- :mod:`.bulk`: one change for many members, all or none;
- :mod:`.activity`: the last-activity ``before_request`` hook (:func:`init_app`).

Within the package, modules import :mod:`.checks` and :mod:`.mail` only.
"""

from __future__ import annotations

from ..signals import member_invited, records_reassigned
from .activity import init_app
from .bulk import BULK_ACTIONS, BulkRefused, bulk_change
from .checks import (
    EMAIL_MAX,
    membership_of,
    normalise_email,
    require,
    set_password,
    user_by_email,
)
from .departments import (
    VISIBILITY_LEVELS,
    assign_to_manager,
    assigned_members,
    create_department,
    delete_department,
    department_holders,
    department_members,
    rename_department,
    set_department,
    set_visibility,
    unassign_from_manager,
    workspace_departments,
)
from .invitations import (
    INVITE_SALT,
    InvalidInvitation,
    accept,
    has_password,
    invitation_for_token,
    invitation_in,
    invite,
    needs_password,
    open_invitations,
    rbac_create_user,
    resend,
    revoke,
)
from .lifecycle import (
    deactivate,
    issue_token,
    manageable_tokens,
    may_change_status,
    reactivate,
    revoke_member_token,
)
from .listing import SORT_KEYS, MemberFilter, count_members, gate_members_export, list_members
from .mail import (
    notify_mfa_turned_off,
    send_invitation,
    send_mail,
    send_mfa_turned_off,
    send_password_changed,
)
from .password_reset import (
    InvalidResetLink,
    notify_reset,
    request_reset,
    reset_password,
    user_for_reset_token,
)
from .pictures import (
    API_PICTURE_ENDPOINT,
    PICTURE_ENDPOINT,
    picture_urls,
    remove_picture,
    send_picture,
    set_picture,
    shown_picture,
)
from .profile import update_profile
from .reassignment import owned_counts, reassign, reassign_preview, reassignable

__all__ = [
    "API_PICTURE_ENDPOINT", "BULK_ACTIONS", "EMAIL_MAX", "INVITE_SALT", "PICTURE_ENDPOINT",
    "SORT_KEYS", "VISIBILITY_LEVELS",
    "BulkRefused", "InvalidInvitation", "InvalidResetLink", "MemberFilter",
    "accept", "assign_to_manager", "assigned_members", "bulk_change", "count_members",
    "create_department", "deactivate", "issue_token",
    "delete_department", "department_holders", "department_members", "gate_members_export",
    "has_password", "init_app", "manageable_tokens", "revoke_member_token",
    "invitation_for_token", "invitation_in", "invite", "list_members", "may_change_status",
    "member_invited",
    "membership_of", "needs_password", "normalise_email", "notify_mfa_turned_off",
    "notify_reset", "open_invitations",
    "owned_counts",
    "picture_urls", "rbac_create_user", "reactivate", "reassign", "reassign_preview",
    "reassignable", "records_reassigned", "remove_picture", "rename_department",
    "request_reset", "require", "resend", "reset_password", "revoke", "send_invitation",
    "send_mail", "send_mfa_turned_off", "send_password_changed", "send_picture",
    "set_department", "set_password", "set_picture", "set_visibility", "shown_picture",
    "unassign_from_manager", "update_profile", "user_by_email", "user_for_reset_token",
    "workspace_departments",
]
