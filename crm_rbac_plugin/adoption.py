"""Bring an existing app under the plugin: its workspace, its users, its rows.

An app that installs the plugin has users and rows but no workspace, no
membership and NULL workspace columns, so every list is empty and every
write refused (the plugin fails closed). :func:`adopt` fixes that in one
idempotent step, run inside ``rbac.system()``:

1. create the workspace ``RBAC_DEFAULT_WORKSPACE`` (or the one named), with
   its built-in roles;
2. make the named user its Owner (required while it has none);
3. make every user without a membership there a member with one role;
4. set the workspace column of every registered model's rows where it is
   NULL, ``batch`` rows per UPDATE, committing after each batch so a long
   backfill holds short locks and resumes where it stopped.

A run that finds nothing to do changes nothing and says so; a dry run only
counts. One audit event records the counts of a run that changed something.

:func:`enroll` gives a new user their first membership; with
``RBAC_SIGNUP_ROLE`` set the extension calls it when a user with no
membership signs in through Flask-Login. It never gives Owner or Admin: a
misconfigured key must not hand every stranger the workspace.

:func:`check_tenancy` refuses at ``init_app`` a resource registered without
a workspace column outside single-tenant mode: its rows would belong to no
workspace and the query filter could not isolate them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app

from . import workspaces
from .config import setting
from .errors import ConfigurationError, RBACError
from .loader import BYPASS
from .registry import Resource

if TYPE_CHECKING:
    from .interface import RBACProtocol

#: Role keys that neither ``RBAC_SIGNUP_ROLE`` nor :func:`enroll` ever give.
PRIVILEGED_ROLES = frozenset({"owner", "admin"})

#: ``progress(label, total)`` returns a context manager yielding ``update(rows)``;
#: ``click.progressbar`` fits (see the ``flask rbac adopt`` command).
Progress = Callable[[str, int], AbstractContextManager[Callable[[int], Any]]]


class AdoptionError(RBACError):
    """An adoption that cannot run as asked (unknown owner, unknown role, ...)."""


@dataclass
class AdoptionReport:
    """What :func:`adopt` did, or would do in a dry run."""

    workspace: str
    dry_run: bool = False
    workspace_created: bool = False
    owner: str | None = None
    owner_added: bool = False
    members_added: int = 0
    backfilled: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return (self.workspace_created or self.owner_added or self.members_added > 0
                or any(self.backfilled.values()))

    def lines(self) -> list[str]:
        """Describe the run for a person, one line per step that does something."""
        if not self.changed:
            return [f"Nothing to do: workspace {self.workspace!r} is already adopted."]
        steps = []
        if self.workspace_created:
            steps.append(f"create workspace {self.workspace!r}")
        if self.owner_added:
            steps.append(f"make {self.owner} its Owner")
        if self.members_added:
            steps.append(f"add {self.members_added} existing user(s) as members")
        steps += [f"set the workspace of {rows} {name} row(s)"
                  for name, rows in self.backfilled.items() if rows]
        verb = "Would " if self.dry_run else ""
        return [verb + step if verb else step[0].upper() + step[1:] for step in steps]


def check_tenancy(rbac: RBACProtocol, app: Flask) -> None:
    """Refuse a configuration the tenancy rules cannot enforce (called by ``init_app``)."""
    for res in rbac.registry:
        check_resource(res, app)
    role = setting("RBAC_SIGNUP_ROLE", app)
    if role is not None and _is_privileged(role, setting("RBAC_ROLE_TEMPLATES", app)):
        raise ConfigurationError(
            f"RBAC_SIGNUP_ROLE = {role!r} would give every new user a privileged role; "
            "use a role such as 'member' and promote people one by one")


def check_resource(res: Resource, app: Flask) -> None:
    """Refuse a model without a workspace column outside single-tenant mode."""
    if res.model is not None and res.workspace_column is None \
            and not setting("RBAC_SINGLE_TENANT", app):
        raise ConfigurationError(
            f"resource {res.name!r} is registered with workspace=None, which only "
            "single-tenant mode allows: set RBAC_SINGLE_TENANT = True, or give "
            f"{res.model.__name__} a workspace column (crm_rbac_plugin.mixins."
            "WorkspaceMixin) and register it with workspace='workspace_id'")


def _is_privileged(role_key: str, templates: Any) -> bool:
    owners = {t["key"] for t in templates if t.get("is_owner")}
    return role_key in PRIVILEGED_ROLES or role_key in owners


def default_workspace(rbac: RBACProtocol, slug: str | None = None) -> Any:
    """Return the workspace ``slug`` (default: ``RBAC_DEFAULT_WORKSPACE``), or None."""
    W = rbac.models.Workspace
    return rbac.db.session.scalar(
        sa.select(W).where(W.slug == (slug or setting("RBAC_DEFAULT_WORKSPACE"))),
        execution_options=BYPASS)


def has_owner(rbac: RBACProtocol, workspace: Any) -> bool:
    """Whether an active member of ``workspace`` holds an Owner role."""
    m = rbac.models
    return rbac.db.session.scalar(
        sa.select(sa.func.count()).select_from(m.MemberRole)
        .join(m.Role, m.Role.id == m.MemberRole.role_id)
        .join(m.Membership, m.Membership.id == m.MemberRole.membership_id)
        .where(m.Membership.workspace_id == workspace.id, m.Membership.status == "active",
               m.Role.is_owner.is_(True)), execution_options=BYPASS) > 0


def _user_by_email(rbac: RBACProtocol, email: str) -> Any:
    U = rbac.user_model
    user = rbac.db.session.scalar(
        sa.select(U).where(sa.func.lower(U.email) == email.strip().lower()),  # type: ignore[attr-defined]
        execution_options=BYPASS)
    if user is None:
        raise AdoptionError(f"no user with email {email!r}")
    return user


def _check_role(rbac: RBACProtocol, workspace: Any, role: str) -> None:
    if role == "owner":
        raise AdoptionError("existing users cannot all become Owners; name one with --owner")
    keys = ({t["key"] for t in setting("RBAC_ROLE_TEMPLATES")} if workspace is None else
            set(rbac.db.session.scalars(
                # Custom roles have no key: only the built-in ones are named by key.
                sa.select(rbac.models.Role.key).where(rbac.models.Role.workspace_id == workspace.id,
                                                      rbac.models.Role.key.is_not(None)),
                execution_options=BYPASS)))
    if role not in keys:
        raise AdoptionError(f"unknown role {role!r}; use one of {', '.join(sorted(keys))}")


def _users_without_membership(rbac: RBACProtocol, workspace: Any, exclude: Any) -> list[Any]:
    U, M = rbac.user_model, rbac.models.Membership
    pk = sa.inspect(U).primary_key[0]
    stmt = sa.select(U).order_by(pk)
    if workspace is not None:
        stmt = stmt.where(~sa.exists().where(M.user_id == pk, M.workspace_id == workspace.id))
    users = rbac.db.session.scalars(stmt, execution_options=BYPASS).all()
    return [u for u in users if u is not exclude]


def _missing(res: Resource) -> Any:
    return res.table.c[res.workspace_column].is_(None)  # type: ignore[index]


def _null_rows(rbac: RBACProtocol, res: Resource) -> int:
    return int(rbac.db.session.scalar(
        sa.select(sa.func.count()).select_from(res.table).where(_missing(res)),
        execution_options=BYPASS))


def _backfill_batches(rbac: RBACProtocol, res: Resource, workspace_id: Any,
                      batch: int) -> Iterator[int]:
    """Set the workspace of ``res``'s NULL rows, ``batch`` rows per UPDATE; yield each count."""
    table = res.table
    pk = table.primary_key.columns.values()[0]
    session = rbac.db.session
    while True:
        ids = session.scalars(sa.select(pk).where(_missing(res)).order_by(pk).limit(batch),
                              execution_options=BYPASS).all()
        if not ids:
            return
        session.execute(table.update().where(pk.in_(ids), _missing(res))
                        .values({res.workspace_column: workspace_id}), execution_options=BYPASS)
        session.commit()
        yield len(ids)


def adopt(rbac: RBACProtocol, *, workspace: str | None = None, name: str | None = None,
          owner: str | None = None, role: str = "member", batch: int = 1000,
          dry_run: bool = False, progress: Progress | None = None) -> AdoptionReport:
    """Create or complete the workspace ``workspace`` (a slug) for the app's existing data.

    ``owner`` is the email of the user who becomes the Owner (required while
    the workspace has none); every other user without a membership there
    becomes a member holding ``role``; NULL workspace columns of every
    registered model are set, ``batch`` rows at a time. ``dry_run`` counts
    and changes nothing. Raises :class:`AdoptionError` before changing
    anything when the owner or the role is unknown.
    """
    if batch < 1:
        raise AdoptionError("the batch size must be at least 1")
    slug = workspace or setting("RBAC_DEFAULT_WORKSPACE")
    with rbac.system():
        ws = default_workspace(rbac, slug)
        report = AdoptionReport(slug, dry_run=dry_run, workspace_created=ws is None)
        owner_user = _user_by_email(rbac, owner) if owner else None
        _check_role(rbac, ws, role)
        if owner_user is None and (ws is None or not has_owner(rbac, ws)):
            raise AdoptionError(f"workspace {slug!r} has no Owner yet; name one with --owner EMAIL")
        if owner_user is not None and not (ws is not None and _is_owner(rbac, ws, owner_user)):
            report.owner, report.owner_added = owner_user.email, True
        users = _users_without_membership(rbac, ws, owner_user)
        report.members_added = len(users)
        targets = [r for r in rbac.registry if r.model is not None and r.workspace_column]
        report.backfilled = {r.name: _null_rows(rbac, r) for r in targets}
        if dry_run or not report.changed:
            return report
        ws = ws or workspaces.create_workspace(rbac, name or slug.replace("-", " ").title(),
                                               slug=slug)
        if report.owner_added:
            _make_owner(rbac, ws, owner_user)
        for start in range(0, len(users), batch):
            for user in users[start:start + batch]:
                membership = rbac.models.Membership(workspace=ws, user=user, status="active")
                rbac.db.session.add(membership)
                workspaces.assign_role(rbac, membership, role)
            rbac.db.session.flush()
        rbac.db.session.commit()
        for res in targets:
            total = report.backfilled[res.name]
            if total:
                with (progress(res.name, total) if progress else nullcontext(_ignore)) as update:
                    for rows in _backfill_batches(rbac, res, ws.id, batch):
                        update(rows)
        rbac.audit("adopt", workspace_id=ws.id, workspace_created=report.workspace_created,
                   owner=report.owner, members_added=report.members_added, role=role,
                   backfilled=report.backfilled)
        rbac.db.session.commit()
    return report


def _ignore(rows: int) -> None:
    """The progress callback of a run without a progress bar."""


def _is_owner(rbac: RBACProtocol, workspace: Any, user: Any) -> bool:
    m = rbac.models
    return rbac.db.session.scalar(
        sa.select(sa.func.count()).select_from(m.MemberRole)
        .join(m.Role, m.Role.id == m.MemberRole.role_id)
        .join(m.Membership, m.Membership.id == m.MemberRole.membership_id)
        .where(m.Membership.workspace_id == workspace.id,
               m.Membership.user_id == rbac.user_pk(user), m.Role.is_owner.is_(True)),
        execution_options=BYPASS) > 0


def _make_owner(rbac: RBACProtocol, workspace: Any, user: Any) -> None:
    M = rbac.models.Membership
    membership = rbac.db.session.scalar(
        sa.select(M).where(M.workspace_id == workspace.id, M.user_id == rbac.user_pk(user)),
        execution_options=BYPASS)
    if membership is None:
        workspaces.add_member(rbac, workspace, user, ["owner"])
    else:
        membership.status = "active"
        workspaces.assign_role(rbac, membership, "owner")
    rbac.db.session.flush()


def enroll(rbac: RBACProtocol, user: Any, role: str | None = None) -> Any:
    """Give ``user`` a first membership holding ``role`` (default: ``RBAC_SIGNUP_ROLE``).

    Call it from a registration view (then commit). It does nothing and
    returns None for a user who already has a membership anywhere, in any
    status (a deactivated user stays deactivated), or when no role is set.
    The membership is in ``RBAC_DEFAULT_WORKSPACE``, which single-tenant mode
    creates on demand and multi-tenant mode expects ``flask rbac adopt`` to
    have created. Owner and Admin are refused.
    """
    role = role or setting("RBAC_SIGNUP_ROLE")
    if role is None:
        return None
    if _is_privileged(role, setting("RBAC_ROLE_TEMPLATES")):
        raise RBACError(f"sign-up never gives the privileged role {role!r}")
    M = rbac.models.Membership
    with rbac.system():
        if rbac.db.session.scalar(sa.select(M.id).where(M.user_id == rbac.user_pk(user)).limit(1),
                                  execution_options=BYPASS) is not None:
            return None
        ws = default_workspace(rbac)
        if ws is None and setting("RBAC_SINGLE_TENANT"):
            slug = setting("RBAC_DEFAULT_WORKSPACE")
            ws = workspaces.create_workspace(rbac, slug.replace("-", " ").title(), slug=slug)
        if ws is None:
            raise RBACError(f"workspace {setting('RBAC_DEFAULT_WORKSPACE')!r} does not exist; "
                            "run `flask rbac adopt` first")
        return workspaces.add_member(rbac, ws, user, [role])


def on_user_logged_in(rbac: RBACProtocol, sender: Any, user: Any, **extra: Any) -> None:
    """Flask-Login ``user_logged_in`` receiver: enroll a user with no membership.

    Only with ``RBAC_SIGNUP_ROLE`` set, and only in the apps using ``rbac``.
    The membership is committed at once, so the page after sign-in sees it.
    """
    state = getattr(sender, "extensions", {}).get("rbac")
    if state is None or state.rbac is not rbac or setting("RBAC_SIGNUP_ROLE") is None:
        return
    try:
        membership = enroll(rbac, user)
    except RBACError as exc:
        current_app.logger.warning("no sign-up membership for %s: %s", user, exc)
        return
    if membership is not None:
        rbac.db.session.commit()
