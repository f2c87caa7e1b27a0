"""The write guard: checks every flushed insert, update and delete.

Listening on ``before_flush`` means a view that forgets its decorator still
cannot write what the member may not: the check runs whatever route, form or
admin panel the change came through. Updates are checked twice, on the
record as it was (may the member edit it at all?) and as it will be (is it
still inside their scope?), so nobody moves a record out of reach by editing
its owner or a condition field, unless they hold ``manage`` on it (the right
to reassign). The workspace column never changes outside the system context.

The same listeners bump ``Workspace.policy_version`` whenever something that
alters effective access is flushed, and send the ``role_changed`` and
``member_changed`` signals.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import MANYTOONE, Session

from . import fields, policy
from .access_cache import note_changed_rules, note_uncommitted_policy
from .errors import PermissionDenied
from .loader import BYPASS
from .record_checks import check_for

if TYPE_CHECKING:
    from .interface import RBACProtocol
    from .policy import Access
    from .registry import Resource


def old_state(obj: Any) -> SimpleNamespace:
    """Return the record's column values as last loaded from the database."""
    state = sa.inspect(obj)
    loaded = state.dict
    if state.has_identity and not state.modified:
        # Nothing set since the row was loaded: every loaded column holds its stored value.
        keys = [attr.key for attr in state.mapper.column_attrs]
        if all(k in loaded for k in keys):
            return SimpleNamespace(**{k: loaded[k] for k in keys})
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if hist.deleted:
            values[attr.key] = hist.deleted[0]
        elif hist.unchanged:
            values[attr.key] = hist.unchanged[0]
        elif hist.added and state.has_identity:
            # Set while not loaded (typically expired by a commit): the history
            # holds no old value and getattr() would return the *new* one, which
            # let a member take over an invisible record by setting owner_id.
            # Read what the database holds instead.
            unknown.append(attr.key)
        elif attr.key in state.unloaded and state.has_identity:
            # Not loaded (expired, or a field hidden from the member): read the
            # row rather than load it onto the instance.
            unknown.append(attr.key)
        else:
            values[attr.key] = getattr(obj, attr.key)
    if unknown:
        values.update(fields.stored_values(state, unknown))
    return SimpleNamespace(**values)


def _sync_many_to_one(rbac: RBACProtocol, access: Access | None, res: Resource, obj: Any) -> None:
    """Copy changed many-to-one relationships into their foreign-key columns now.

    The flush copies ``lead.owner = user`` into ``owner_id`` only after
    ``before_flush``, so the guard would judge the old ``owner_id`` (and
    auto-fill would even set the current user): a member could give records
    away, or create them for others, through the relationship. A target with
    no primary key yet (created in the same flush) leaves the foreign key
    unknown: that is refused for the columns that decide who sees the record,
    and left empty (the narrower reading) for a parent column.
    """
    state = sa.inspect(obj)
    mapper = state.mapper
    guarded = {res.workspace_column, res.owner_column, res.department_column}
    for prop in mapper.relationships:
        if prop.direction is not MANYTOONE:
            continue
        hist = state.attrs[prop.key].history
        if not hist.has_changes():
            continue
        target = hist.added[0] if hist.added else None
        for local, remote in prop.local_remote_pairs:
            key = mapper.get_property_by_column(local).key
            value = None if target is None else getattr(
                target, sa.inspect(target).mapper.get_property_by_column(remote).key)
            if value is None and target is not None and key in guarded:
                raise _refuse(rbac, access, res,  # type: ignore[arg-type]
                              "create" if state.pending else "edit", obj,
                              f"{prop.key} points at an object that is not saved yet; "
                              "flush it first")
            setattr(obj, key, value)  # the flush sets the same value (or the new key)


def _refuse(rbac: RBACProtocol, access: Access, res: Resource, action: str, obj: Any,
            reason: str) -> PermissionDenied:
    rbac.signal_denied(access, action, res.name, obj, reason)
    return PermissionDenied(f"You may not {action} this {res.name} record: {reason}",
                            resource=res.name, action=action)


def _allows(rbac: RBACProtocol, access: Access | None, action: str, res: Resource, record: Any,
            loader: Any) -> bool:
    """Whether ``access`` may ``action`` the record: :meth:`decide`'s answer, without its reasons.

    A write usually passes, and the reasons (rule descriptions and steps)
    cost several times the decision: they are built only for a refusal
    (:func:`_refuse_by`). The answer is the Access's compiled check
    (:mod:`.record_checks`) when it decides from the record's loaded values,
    else :func:`.policy.allowed` on the record as the policy may read it,
    the rules of :func:`.policy.decide` step for step.
    """
    if access is None:
        return False
    answer = check_for(access, rbac.registry, res.name, action)(record)
    if answer is None:
        answer = policy.allowed(access, rbac.registry, action, res.name,
                                fields.readable(rbac, record), loader)
    return answer


def _refuse_by(rbac: RBACProtocol, access: Access | None, res: Resource, action: str, obj: Any,
               record: Any, loader: Any, wording: str = "{}") -> PermissionDenied:
    """The refusal of ``action`` on ``record`` (``obj`` as it was or will be), with the reason
    :meth:`decide` gives (in ``wording``)."""
    reason = rbac.decide(access, action, res.name, record, loader).reason
    return _refuse(rbac, access, res, action, obj,  # type: ignore[arg-type]
                   wording.format(reason))


def check_flush(rbac: RBACProtocol, session: Session) -> None:
    """Refuse the flush if the current member may not make one of its changes."""
    registry = rbac.registry
    # session.new and session.deleted build a new set on every access: read them
    # once, or a flush of n new rows (an import's chunk) costs n squared.
    new, deleted = list(session.new), list(session.deleted)
    touched = [(o, registry.for_model(type(o))) for o in (*new, *session.dirty, *deleted)]
    touched = [(o, r) for o, r in touched if r is not None]
    if not touched:
        return
    ctx = rbac.resolve_context()
    if ctx is rbac.SYSTEM:
        return
    access: Access | None = ctx  # type: ignore[assignment]
    loader = rbac.parent_loader(session)
    new_ids, deleted_ids = {id(o) for o in new}, {id(o) for o in deleted}
    for obj, res in touched:
        assert res is not None
        if id(obj) not in deleted_ids:
            _sync_many_to_one(rbac, access, res, obj)
        if id(obj) in new_ids:
            _check_insert(rbac, access, res, obj, loader)
        elif id(obj) in deleted_ids:
            before = old_state(obj)
            if not _allows(rbac, access, "delete", res, before, loader):
                raise _refuse_by(rbac, access, res, "delete", obj, before, loader)
        elif session.is_modified(obj, include_collections=False):
            _check_update(rbac, access, res, obj, loader)


def _check_insert(rbac: RBACProtocol, access: Access | None, res: Resource, obj: Any,
                  loader: Any) -> None:
    if access is not None and rbac.config("RBAC_AUTO_FILL"):
        if res.workspace_column is not None and getattr(obj, res.workspace_column) is None:
            setattr(obj, res.workspace_column, access.workspace_id)
        if res.owner_column and getattr(obj, res.owner_column) is None:
            setattr(obj, res.owner_column, access.user_id)
    unwritable = access.unwritable(res.name) if access is not None else frozenset()
    set_by_member = {f for f in unwritable if getattr(obj, f, None) is not None}
    if access is not None:
        fields.fill_defaults(obj)  # judge the row the INSERT stores
    if not _allows(rbac, access, "create", res, obj, loader):
        raise _refuse_by(rbac, access, res, "create", obj, obj, loader)
    _check_sensitive(rbac, access, res, "create", obj, None, loader)
    _check_references(rbac, access, res, "create", obj, loader)
    if access is not None:
        _check_fields(rbac, access, res, "create", obj, set_by_member)
        required = fields.required_unset(obj, unwritable)
        if required:  # else the database refuses the row: a 500 instead of a reason
            raise _refuse(rbac, access, res, "create", obj,
                          f"{', '.join(required)} must be filled in and is read-only for you")


def _check_sensitive(rbac: RBACProtocol, access: Access | None, res: Resource, action: str,
                     obj: Any, before: Any, loader: Any) -> None:
    """Refuse setting a sensitive value (``Resource.sensitive``) without ``manage`` on the
    record as it was (as it will be, for a new one): sending an invoice is not editing it."""
    changes = res.sensitive_changes(obj, before)
    if changes and not _allows(rbac, access, "manage", res,
                               obj if before is None else before, loader):
        raise _refuse(rbac, access, res, action, obj,  # type: ignore[arg-type]
                      f"setting {', '.join(changes)} needs the manage permission")


def _check_references(rbac: RBACProtocol, access: Access | None, res: Resource, action: str,
                      obj: Any, loader: Any, keys: set[str] | None = None) -> None:
    """Refuse a reference to a record of another workspace (a task on a client shared
    with us, a shared deal pointed at the receiving side's client); ``keys``: only
    those columns (an update checks what it changes).

    A record references records of its own workspace: a link across workspaces
    would leave a record whose visibility follows data its workspace does not
    own, and let one workspace rewire another's records.
    """
    ws = access.workspace_id if access is not None else None
    for key, target in rbac.registry.references(res):
        fk = getattr(obj, key) if keys is None or key in keys else None
        if fk is None:
            continue
        linked = loader(target, fk)
        if linked is not None and target.workspace_of(linked, ws) != res.workspace_of(obj, ws):
            raise _refuse(rbac, access, res, action, obj,  # type: ignore[arg-type]
                          f"its {target.name} record belongs to another workspace")


def _check_fields(rbac: RBACProtocol, access: Access, res: Resource, action: str, obj: Any,
                  written: set[str]) -> None:
    """Refuse a write to fields that are hidden or read-only for the member."""
    if written:
        raise _refuse(rbac, access, res, action, obj,
                      f"field(s) {', '.join(sorted(written))} are read-only for you")


def _check_update(rbac: RBACProtocol, access: Access | None, res: Resource, obj: Any,
                  loader: Any) -> None:
    before = old_state(obj)
    if res.workspace_of(before) != res.workspace_of(obj):
        raise _refuse(rbac, access, res, "edit", obj,  # type: ignore[arg-type]
                      "a record cannot move to another workspace")
    if not _allows(rbac, access, "edit", res, before, loader):
        raise _refuse_by(rbac, access, res, "edit", obj, before, loader)
    _check_sensitive(rbac, access, res, "edit", obj, before, loader)
    changed: set[str] | None = None  # the changed keys, read once when a check needs them
    if access is not None and res.workspace_of(before, access.workspace_id) != access.workspace_id:
        # A shared record keeps its owner, department and parent: reassigning is its
        # own workspace's business (manage is never shared).
        changed = _changed_keys(obj)
        moved = changed & {res.owner_column, res.department_column, res.parent_column}
        if moved:
            raise _refuse(rbac, access, res, "edit", obj,
                          f"{', '.join(sorted(str(k) for k in moved))} of a record shared "
                          "with you can only be changed by its own workspace")
    unwritable = access.unwritable(res.name) if access is not None else ()
    references = rbac.registry.references(res)
    if unwritable or references:
        changed = _changed_keys(obj) if changed is None else changed
        if access is not None:
            _check_fields(rbac, access, res, "edit", obj, set(unwritable) & changed)
        if references:
            _check_references(rbac, access, res, "edit", obj, loader, changed)
    if _allows(rbac, access, "edit", res, obj, loader):
        return
    if _allows(rbac, access, "manage", res, before, loader):
        return  # reassigning: managers of the record may hand it to anyone
    raise _refuse_by(rbac, access, res, "edit", obj, obj, loader,
                     "the change would move it out of your reach ({})")


#: Columns of policy tables whose changes alter nobody's access: updating
#: them must not invalidate every cached access of the workspace.
NO_POLICY_EFFECT = frozenset({"policy_version", "last_seen_at", "created_at", "slug"})


def collect_policy_changes(rbac: RBACProtocol, session: Session) -> None:
    """Note the workspaces whose policy a flush changes (bumped after it)."""
    models = rbac.models
    classes = models.policy_classes()
    changed = session.info.setdefault("rbac_changed", {"workspaces": set(), "objects": []})
    rule_classes = tuple(c for c in (models.AlertSettings, models.ReviewSchedule) if c is not None)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, models.SecurityPolicy):
            # Nobody's access changes, but the user loader keeps each
            # workspace's security policy per policy_version (PolicyCache).
            ws = _own_workspace(obj)
            if ws is not None and (obj not in session.dirty
                                   or session.is_modified(obj, include_collections=False)):
                changed["workspaces"].add(ws)
            continue
        if isinstance(obj, models.RoleQuota):
            # A cap alters nobody's access, but each member's Access keeps which
            # resources the workspace caps (quotas.caps.capped_resources).
            ws = _quota_workspace(session, models, obj)
            if ws is not None and (obj not in session.dirty
                                   or session.is_modified(obj, include_collections=False)):
                changed["workspaces"].add(ws)
            continue
        if isinstance(obj, rule_classes):
            # Nobody's access changes, but a permission change keeps its workspace's
            # reason rule and alert settings per policy_version (audit.reasons).
            ws = _own_workspace(obj)
            if ws is not None and _changes_rules(session, obj):
                changed["workspaces"].add(ws)
                note_changed_rules(session, [ws])
            continue
        if not isinstance(obj, classes):
            continue
        if isinstance(obj, models.Workspace) and obj in session.dirty \
                and "timezone" in _changed_keys(obj):
            note_changed_rules(session, [obj.id])  # bumped below, as any workspace column
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        if obj in session.dirty and not _changed_keys(obj) - NO_POLICY_EFFECT:
            continue  # e.g. a member's last activity, or a workspace's name
        if isinstance(obj, models.Workspace) and obj in session.new:
            continue
        wss = workspaces_of(session, models, obj)
        if isinstance(obj, models.Workspace) and "plan" in _changed_keys(obj):
            # The granting workspace's plan gates what its agreements share.
            wss += _receiving_workspaces(session, models, obj.id)
        if wss:
            changed["workspaces"].update(wss)
            changed["objects"].append(obj)


def _changes_rules(session: Session, obj: Any) -> bool:
    """Whether writing alert settings or a review schedule changes a permission change's
    rules: any column of alert settings; a schedule's ``require_reason`` (not its reminders)."""
    if obj not in session.dirty:
        return True  # created or deleted
    keys = _changed_keys(obj)
    return "require_reason" in keys if hasattr(obj, "require_reason") else bool(keys)


def _changed_keys(obj: Any) -> set[str]:
    """Keys of changed columns and relationships (``role.parent = x`` sets no column yet)."""
    state = sa.inspect(obj)
    return {a.key for a in state.mapper.attrs if state.attrs[a.key].history.has_changes()}


def _own_workspace(obj: Any) -> int | None:
    """Return ``obj.workspace_id``, or the id of ``obj.workspace`` if only that is set.

    New rows made as ``Membership(workspace=ws, ...)`` (as ``add_member`` and
    ``seed_roles`` do) get their ``workspace_id`` from the flush, after
    ``before_flush``: without this fallback their workspace was not bumped,
    and cached department scopes missed a new member of the department.
    """
    ws = getattr(obj, "workspace_id", None)
    if ws is None and getattr(obj, "workspace", None) is not None:
        ws = obj.workspace.id
    return ws  # type: ignore[no-any-return]


def _workspace_of(session: Session, models: Any, obj: Any) -> int | None:
    """Find the workspace of a policy object, loading its parent row if needed."""
    ws = _own_workspace(obj)
    if ws is not None:
        return ws
    with session.no_autoflush:
        if isinstance(obj, (models.Grant, models.FieldRule)):
            role = obj.role or session.get(models.Role, obj.role_id, execution_options=BYPASS)
            return _own_workspace(role) if role is not None else None
        if isinstance(obj, models.MemberRole):
            m = obj.membership or session.get(models.Membership, obj.membership_id,
                                              execution_options=BYPASS)
            return _own_workspace(m) if m is not None else None
        if isinstance(obj, models.ManagerAssignment):
            m = session.get(models.Membership, obj.manager_id, execution_options=BYPASS)
            return m.workspace_id if m is not None else None
    return None


def _quota_workspace(session: Session, models: Any, quota: Any) -> int | None:
    """The workspace of a role cap's role (also of a cap just removed from its role)."""
    state = sa.inspect(quota)
    roles = [quota.role, *state.attrs.role.history.deleted]
    role = next((r for r in roles if r is not None), None)
    if role is None and quota.role_id is not None:
        with session.no_autoflush:
            role = session.get(models.Role, quota.role_id, execution_options=BYPASS)
    return _own_workspace(role) if role is not None else None


def workspaces_of(session: Session, models: Any, obj: Any,
                  values: dict[str, Any] | None = None) -> list[int]:
    """Every workspace whose access a change of policy object ``obj`` alters.

    One for most objects; both sides for a sharing agreement and its
    permissions. ``values`` (column values as they were) serves deleted rows.
    """
    if isinstance(obj, models.Workspace):
        return [obj.id] if obj.id is not None else []
    if isinstance(obj, models.SharingAgreement):
        return _sides(obj)
    if isinstance(obj, models.SharingPermission):
        agreement = obj.agreement
        agreement_id = obj.agreement_id if obj.agreement_id is not None else (
            values or {}).get("agreement_id")
        if agreement is None and agreement_id is not None:
            with session.no_autoflush:
                agreement = session.get(models.SharingAgreement, agreement_id,
                                        execution_options=BYPASS)
        return _sides(agreement) if agreement is not None else []
    ws = _workspace_of(session, models, obj)
    return [ws] if ws is not None else []


def _sides(agreement: Any) -> list[int]:
    """The granting and receiving workspace ids of ``agreement`` (ids or, before a
    flush, its related objects' ids)."""
    ids = [agreement.granting_workspace_id or getattr(agreement.granting_workspace, "id", None),
           agreement.receiving_workspace_id or getattr(agreement.receiving_workspace, "id", None)]
    return sorted({i for i in ids if i is not None})


def _receiving_workspaces(session: Session, models: Any, workspace_id: int) -> list[int]:
    SA = models.SharingAgreement
    with session.no_autoflush:
        return list(session.scalars(
            sa.select(SA.receiving_workspace_id).where(
                SA.granting_workspace_id == workspace_id, SA.status == "active"),
            execution_options=BYPASS))


#: Execution option of a bulk statement on a policy table: the ids of the only
#: workspaces whose policy it changes, when the code knows them (deleting one
#: role's conflicts). Without it, the statement retires every workspace's.
POLICY_WORKSPACES = "rbac_policy_workspaces"


def bump_for_statement(rbac: RBACProtocol, session: Session, statement: Any,
                       workspace_ids: Iterable[int] | None = None) -> None:
    """Bump every workspace's ``policy_version`` before an ORM statement that writes,
    in bulk, a table whose rows decide someone's access or a kept policy
    (``session.execute(delete(Grant)...)``, ``update(MemberRole)``, ``insert(Role)``).

    A flush names the workspace of each row it writes
    (:func:`collect_policy_changes`); a bulk statement does not, so every
    workspace's cached access, kept security policy and permission-change
    rules are retired, and the transaction's own Access is not cached; or
    only those of ``workspace_ids`` (the :data:`POLICY_WORKSPACES` option).
    An UPDATE that sets only columns without effect on anyone's access
    (:data:`NO_POLICY_EFFECT`, a member's last activity) retires nothing.
    Rare maintenance code takes this path; raw ``connection.execute()`` and
    ``text()`` SQL are not seen (see the README's known gaps).
    """
    table = getattr(statement, "table", None)  # an ORM statement's is an annotated copy
    if getattr(table, "name", None) not in _bulk_watched(rbac.models):
        return
    if statement.is_update and _sets_only(statement, NO_POLICY_EFFECT):
        return
    W = rbac.models.Workspace.__table__
    which = sa.true() if workspace_ids is None else W.c.id.in_(sorted(set(workspace_ids)))
    ids = list(session.connection().execute(sa.select(W.c.id).where(which)).scalars())
    if ids:
        session.connection().execute(
            sa.update(W).where(W.c.id.in_(ids)).values(policy_version=W.c.policy_version + 1))
    note_uncommitted_policy(session, ids)
    note_changed_rules(session, ids)


@functools.lru_cache(maxsize=8)
def _bulk_watched(models: Any) -> frozenset[str]:
    """Names of the tables whose bulk writes retire every workspace's kept policy: the
    policy tables, and the security policies, caps, alert settings and review
    schedules that a flush of theirs also bumps (:func:`collect_policy_changes`)."""
    classes = (*models.policy_classes(), models.SecurityPolicy, models.RoleQuota,
               models.AlertSettings, models.ReviewSchedule)
    return frozenset(c.__table__.name for c in classes if c is not None)


def _sets_only(statement: Any, columns: frozenset[str]) -> bool:
    """Whether an UPDATE sets some of ``columns`` and nothing else. Values given as the
    execution's parameters (an UPDATE by primary key with a list) are not in the
    statement: such an UPDATE counts as setting anything."""
    ordered = getattr(statement, "_ordered_values", None)
    keys = [k for k, _ in ordered] if ordered else list(getattr(statement, "_values", None) or ())
    names = {getattr(k, "key", k) for k in keys}
    return bool(names) and names <= columns


def bump_policy_versions(rbac: RBACProtocol, session: Session) -> None:
    """Increment ``policy_version`` of the workspaces noted during the flush."""
    changed = session.info.get("rbac_changed")
    if not changed or not changed["workspaces"]:
        return
    W = rbac.models.Workspace
    ids = sorted(changed["workspaces"])
    T = W.__table__
    bumped = session.connection().execute(
        sa.update(T).where(T.c.id.in_(ids)).values(policy_version=T.c.policy_version + 1)
        .returning(T.c.id, T.c.policy_version))
    # No caching of Access until the transaction ends; the versions its commit leaves.
    note_uncommitted_policy(session, ids, dict(bumped.tuples().all()))
    for obj in list(session.identity_map.values()):
        if isinstance(obj, W) and obj.id in changed["workspaces"]:
            session.expire(obj, ["policy_version"])
    objects = changed["objects"]
    session.info.pop("rbac_changed", None)
    rbac.signal_policy_changed(ids, objects)
