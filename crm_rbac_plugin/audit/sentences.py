"""Read an audit event as sentences: "Junior Rep: leads.export removed by Olivia Owens".

An event holds ids and column snapshots (see :mod:`.changes`); a reader
wants who did what to whom. :func:`describe` turns one event into a
headline and one :class:`Line` per change, each with the compact diff of
what changed (field, old → new), naming members, roles, departments,
workspaces and agreements through :class:`.names.Names`. The audit page and
its CSV export use the same sentences.

Rows an event points at may be gone: a role deleted in the same transaction
is named from its own snapshot; otherwise the sentence says "a deleted
role" or "a former member" rather than printing an id.

Sign-in and security events (:data:`SECURITY_EVENTS`) read from their
agreed detail keys and end with where they came from: the ``ip`` column
and the browser named from ``detail.user_agent`` ("from 203.0.113.7,
Firefox on Linux"), when the event holds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import conditions, role_conditions
from .event_sentences import sentence_for
from .names import Names

#: Columns that never make a useful diff line (bookkeeping, not policy).
QUIET = frozenset({"id", "created_at", "updated_at", "policy_version", "last_seen_at",
                   "decided_at", "workspace_id", "user_id", "created_by_id"})

_VERB = {"created": "added", "deleted": "removed", "changed": "changed"}
_AGREEMENT_VERB = {"sharing.created": "offered", "sharing.accepted": "accepted",
                   "sharing.declined": "declined", "sharing.left": "left",
                   "sharing.revoked": "revoked", "sharing.deleted": "deleted",
                   "sharing.changed": "changed"}


@dataclass
class Line:
    """One change as a sentence, with its diff: (field, old, new) triples."""

    text: str
    diff: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Described:
    """An event read out: who acted, the headline, and one line per change."""

    actor: str
    headline: str
    lines: list[Line]


def _show(names: Names, key: str, value: Any) -> str:
    """A column's value as a reader says it: ids named, conditions in words."""
    if key == "access_condition":
        return role_conditions.describe(role_conditions.stored(value), names.timezone) \
            if value else "always"
    if value is None or value == "":
        return "—"
    if key in ("role_id", "parent_id", "role_a_id", "role_b_id"):
        return names.role(value)
    if key == "department_id":
        return names.department(value)
    if key in ("manager_id", "member_id") or key.endswith("membership_id"):
        return names.member(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "condition" and isinstance(value, list):
        return _clauses(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, (dict, list)):
        return "…"
    return str(value)


def _clauses(value: list[Any]) -> str:
    """A record condition as stored (``[[field, op, value], ...]``) in words."""
    if not all(isinstance(c, list) and len(c) == 3 for c in value):
        return "a condition"
    return conditions.describe([(str(f), str(o), v) for f, o, v in value]) or "—"


def diff(names: Names, before: dict[str, Any] | None, after: dict[str, Any] | None,
         changed: list[str] | None = None) -> list[tuple[str, str, str]]:
    """The changed columns as (field, old, new), named where they hold ids."""
    if not before or not after:
        return []
    keys = changed or sorted(k for k in after if before.get(k) != after.get(k))
    return [(k.replace("_id", "").replace("_", " "), _show(names, k, before.get(k)),
             _show(names, k, after.get(k)))
            for k in keys if k not in QUIET and before.get(k) != after.get(k)]


def _role_names(changes: list[dict[str, Any]]) -> dict[int, str]:
    """Names of roles this event created or deleted, from their own snapshots."""
    out = {}
    for c in changes:
        values = c.get("after") or c.get("before") or {}
        if c.get("kind") == "role" and values.get("name") and c.get("key") is not None:
            out[int(c["key"])] = str(values["name"])
    return out


def _member_sentence(names: Names, c: dict[str, Any], v: dict[str, Any]) -> str:
    who = names.member(c.get("key"))
    return {"member.added": f"{who} added", "member.removed": f"{who} removed",
            "member.deactivated": f"{who} deactivated",
            "member.reactivated": f"{who} reactivated"}.get(c.get("action", ""),
                                                            f"{who} changed")


def _grant_sentence(names: Names, c: dict[str, Any], v: dict[str, Any]) -> str:
    deny = "deny " if v.get("effect") == "deny" else ""
    text = f"{names.role(v.get('role_id'))}: {deny}{v.get('resource')}.{v.get('action')} " \
           f"{_VERB[c['op']]}"
    if c["op"] != "changed" and v.get("scope"):
        text += f" ({v['scope']}{' with a condition' if v.get('condition') else ''})"
    return text


def _assignment_sentence(names: Names, c: dict[str, Any], v: dict[str, Any]) -> str:
    who, role = names.member(v.get("membership_id")), names.role(v.get("role_id"))
    if c["op"] == "created":
        return f"{who} given the role {role}"
    if c["op"] == "deleted":
        return f"{who} no longer has the role {role}"
    return f"{who}: role {role} changed"


def _agreement_sentence(names: Names, c: dict[str, Any], v: dict[str, Any]) -> str:
    if c.get("kind") == "agreement_permission":
        return (f"{names.agreement(v.get('agreement_id'))}: {v.get('resource')}."
                f"{v.get('action')} {_VERB[c['op']]}")
    verb = _AGREEMENT_VERB.get(c.get("action", ""), "changed")
    return f"{names.agreement(c.get('key'), v)} {verb}"


def _other_sentence(names: Names, c: dict[str, Any], v: dict[str, Any]) -> str:
    kind, op = c.get("kind"), c["op"]
    if kind == "role":
        return f"Role {v.get('name') or names.role(c.get('key'))} " + \
            {"created": "created", "deleted": "deleted"}.get(op, "changed")
    if kind == "field_rule":
        return (f"{names.role(v.get('role_id'))}: field {v.get('resource')}.{v.get('field')} "
                f"{v.get('mode') or ''} rule {_VERB[op]}").replace("  ", " ")
    if kind == "manager":
        who, manager = names.member(v.get("member_id")), names.member(v.get("manager_id"))
        return (f"{who} now reports to {manager}" if op == "created" else
                f"{who} no longer reports to {manager}" if op == "deleted" else
                f"{who} reports to {manager}: changed")
    if kind == "department":
        return f"Department {v.get('name') or names.department(c.get('key'))} " + \
            {"created": "created", "deleted": "deleted"}.get(op, "changed")
    if kind == "sod":
        pair = f"{names.role(v.get('role_a_id'))} and {names.role(v.get('role_b_id'))}"
        return (f"Segregation of duties: {pair} may no longer be held together"
                if op == "created" else
                f"Segregation of duties: {pair} may be held together again" if op == "deleted"
                else f"Segregation-of-duties rule on {pair} changed")
    if kind == "department_role":
        role, dept = names.role(v.get("role_id")), names.department(v.get("department_id"))
        return (f"Department {dept} given the role {role}" if op == "created" else
                f"Department {dept} no longer gives the role {role}" if op == "deleted" else
                f"Department {dept}: role {role} changed")
    if kind == "workspace":
        return {"plan.changed": f"Plan set to {v.get('plan')}", "workspace.created":
                f"Workspace {v.get('name') or names.workspace(c.get('key'))} created"}.get(
            c.get("action", ""), "Workspace settings changed")
    return f"{kind} {_VERB.get(op, op)}"


_BY_KIND = {"member": _member_sentence, "grant": _grant_sentence,
            "assignment": _assignment_sentence, "agreement": _agreement_sentence,
            "agreement_permission": _agreement_sentence}


def change_line(names: Names, c: dict[str, Any], ev: Any) -> Line:
    """One recorded change as a sentence (without its actor) and its diff."""
    target = c.get("target")
    before = c.get("before") if "before" in c else (ev.before or {}).get(target)
    after = c.get("after") if "after" in c else (ev.after or {}).get(target)
    values = after or before or {}
    text = _BY_KIND.get(c.get("kind", ""), _other_sentence)(names, c, values)
    if text.startswith(("a deleted", "a former")):  # a sentence starts with a capital
        text = text[0].upper() + text[1:]
    return Line(text, diff(names, before, after, c.get("changed")))


def _event_sentence(names: Names, ev: Any, actor: str) -> str:
    """The headline of an event that recorded no policy change (a refusal, an export...)."""
    d = ev.detail or {}
    action, resource = ev.action, ev.resource or "records"
    if action == "access.denied":
        record = f" (record #{d['record_id']})" if d.get("record_id") is not None else ""
        return f"{actor} was refused {d.get('action', 'access')} on {resource}{record}"
    if action == "export":
        rows = d.get("rows")
        what = "the audit trail" if resource == "audit" else resource
        return f"{actor} exported {what}" + (f" ({rows} rows)" if rows is not None else "")
    if action == "shared.export":
        return (f"{names.workspace(d.get('receiving_workspace_id'))} exported "
                f"{d.get('rows', 0)} shared {resource}")
    if action == "shared.write":
        agreement = names.agreement(None, {"granting_workspace_id": d.get(
            "granting_workspace_id"), "receiving_workspace_id": d.get("receiving_workspace_id")})
        return f"{actor} changed shared {resource} under the {agreement[0].lower()}{agreement[1:]}"
    if action == "access.requested":
        return f"{actor} asked for {d.get('permission', resource)}"
    if action.startswith("member.invite"):
        verb = {"member.invited": "invited", "member.invite_resent": "invitation resent",
                "member.invite_revoked": "invitation revoked"}.get(action, action)
        after = ev.after if isinstance(ev.after, dict) else {}
        roles = ", ".join(map(str, after.get("roles") or []))
        where = f" in {after['department']}" if after.get("department") else ""
        return f"{ev.target} {verb} by {actor}" + (f" as {roles}{where}" if roles else where)
    return f"{action.replace('.', ' ').replace('_', ' ').capitalize()} by {actor}"


# -- sign-in and security events ----------------------------------------------------------

#: The sign-in and security events, each with its label in the audit page's filter.
SECURITY_EVENTS: dict[str, str] = {
    "auth.login": "Signed in",
    "auth.failed": "Wrong password",
    "auth.throttled": "Sign-in refused: too many attempts",
    "auth.reset_requested": "Password reset asked for",
    "auth.password_reset": "Password reset",
    "auth.mfa_enrolled": "Two-factor turned on",
    "auth.mfa_failed": "Wrong two-factor code",
    "auth.mfa_reset": "Two-factor reset",
    "auth.mfa_turned_off": "Two-factor turned off",
    "auth.mfa_recovery_codes": "New recovery codes",
    "session.revoked": "Session ended",
    "security_policy.changed": "Security policy changed",
    "access.ip_refused": "Refused by the IP allowlist",
    "access.device_refused": "Refused by the device policy",
}

#: Groups of events the audit filter offers as one choice (``action=group:<key>``):
#: key -> (label, actions).
EVENT_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "security": ("Sign-in and security", tuple(SECURITY_EVENTS)),
}

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("FxiOS/", "Firefox"), ("Firefox/", "Firefox"),
             ("CriOS/", "Chrome"), ("Chrome/", "Chrome"), ("Safari/", "Safari"),
             ("curl/", "curl"), ("python-requests/", "Python requests"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))
_PRODUCT = re.compile(r"[\w.\-]+(?:/[\w.\-]+)?")


def browser(user_agent: str | None) -> str:
    """Name the browser of a user-agent string: "Firefox on Linux", "curl", "" if none.

    A reader wants the device at a glance, not the raw header; an agent no
    rule knows is named by its first product token ("Werkzeug/3.1").
    """
    agent = (user_agent or "").strip()
    if not agent:
        return ""
    name = next((n for key, n in _BROWSERS if key in agent), "")
    system = next((n for key, n in _SYSTEMS if key in agent), "")
    if name and system:
        return f"{name} on {system}"
    if name or system:
        return name or system
    match = _PRODUCT.match(agent)
    return match.group(0)[:40] if match else "an unknown browser"


def _origin(ev: Any, *, ip: bool = True) -> str:
    """" from 203.0.113.7 (Firefox on Linux)": the event's IP and browser, when held."""
    agent = browser((ev.detail or {}).get("user_agent"))
    text = f" from {ev.ip}" if ip and ev.ip else ""
    return text + (f" ({agent})" if agent else "")


def _plural(count: Any, noun: str) -> str:
    n = int(count) if isinstance(count, int) else 1
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _sign_in_sentence(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    account = actor if ev.actor_membership_id is not None else (ev.target or "an unknown address")
    wait = d.get("wait_seconds")
    waits = f"; the next attempt waits {wait} s" if wait else ""
    if ev.action == "auth.login":
        return f"{account} signed in{_origin(ev)}"
    if ev.action == "auth.failed":
        failures = f": {d['failures']} in a row{waits}" if d.get("failures") else ""
        return f"Wrong password for {account}{_origin(ev)}{failures}"
    if ev.action == "auth.reset_requested":
        outcome = ("link sent" if d.get("sent") else
                   "no mail: too many requests for the address" if d.get("limited") else
                   "no mail: the mail server failed" if d.get("mail_failed") else
                   "no mail: the account cannot sign in with a password")
        return f"Password reset asked for {account}{_origin(ev)} ({outcome})"
    if ev.action == "auth.password_reset":
        return f"{account} set a new password from a reset link{_origin(ev)}; every session ended"
    return (f"Sign-in to {account}{_origin(ev)} refused: too many attempts"
            + (f", wait {wait} s" if wait else ""))


def _mfa_sentence(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    if ev.action == "auth.mfa_enrolled":
        return f"{actor} turned on two-factor authentication{_origin(ev)}"
    if ev.action == "auth.mfa_failed":
        return f"{actor} entered a wrong two-factor code{_origin(ev)}"
    if ev.action == "auth.mfa_recovery_codes":
        return f"{actor} made new recovery codes{_origin(ev)}"
    if ev.action == "auth.mfa_turned_off":
        return f"{actor} turned off their two-factor authentication{_origin(ev)}"
    was = {True: " (it was on)", False: " (it was not set up)"}.get(d.get("was_enrolled"), "")
    via = f" from the {d['via']}" if d.get("via") else ""
    return (f"{actor} reset the two-factor authentication of "
            f"{names.member(d.get('membership_id'))}{was}{via}{_origin(ev)}")


_REVOKED = {
    "signed_out": "{who} signed out{origin}",
    "sign_out_everywhere": "{who} signed out everywhere ({sessions}){origin}",
    "admin": "{actor} signed {who} out everywhere ({sessions}){origin}",
    "idle": "{who}: session ended after being idle too long",
    "expired": "{who}: session ended at its maximum lifetime",
    "cap": "{who}: oldest session ended, too many sessions at once",
    "password_changed": "{who}: {sessions} ended after a password change{origin}",
    "mfa_failed": "{who}: session ended after too many wrong two-factor codes{origin}",
}


def _session_sentence(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    template = _REVOKED.get(d.get("reason", ""), "{who}: {sessions} ended by {actor}{origin}")
    return template.format(who=ev.target or actor, actor=actor, origin=_origin(ev),
                           sessions=_plural(d.get("count", 1), "session"))


def _ip_refused_sentence(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    where = f" on {d['path']}" if d.get("path") else ""
    via = " with an API token" if d.get("via") == "token" else ""
    who = actor if ev.actor_membership_id is not None else (ev.target or actor)
    return (f"{who} was refused{where}{via}: {ev.ip or 'the address'} is not on the IP "
            f"allowlist{_origin(ev, ip=False)}")


#: A device type of :mod:`..security.devices` in a sentence.
_DEVICES = {"desktop": "desktop computers", "mobile": "phones", "tablet": "tablets"}


def _device_refused_sentence(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    where = f" on {d['path']}" if d.get("path") else ""
    who = actor if ev.actor_membership_id is not None else (ev.target or actor)
    device = d.get("device")
    what = (f"{_DEVICES[device]} are not allowed" if device in _DEVICES
            else "the browser is not recognised as an allowed device")
    origin = f" from {ev.ip}" if ev.ip else ""
    return f"{who} was refused{where}{origin}: {what}{_origin(ev, ip=False)}"


def _policy_lines(names: Names, ev: Any) -> list[Line]:
    """One line whose diff holds each changed policy field (``detail.changes``)."""
    changes = (ev.detail or {}).get("changes")
    if not isinstance(changes, dict):
        return []
    rows = []
    for key in sorted(changes):
        pair = changes[key]
        old, new = (pair[0], pair[1]) if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        rows.append((key.replace("_", " "), _policy_value(old), _policy_value(new)))
    return [Line("Security policy", rows)] if rows else []


def _policy_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return _show(Names(0), "", value)


def _security(names: Names, ev: Any, actor: str) -> Described:
    """Read a sign-in or security event (see :data:`SECURITY_EVENTS`)."""
    if ev.action == "security_policy.changed":
        lines = _policy_lines(names, ev)
        fields = ", ".join(f for line in lines for f, _, _ in line.diff)
        return Described(actor, f"Security policy changed by {actor}"
                         + (f": {fields}" if fields else ""), lines)
    if ev.action == "session.revoked":
        text = _session_sentence(names, ev, actor)
    elif ev.action == "access.ip_refused":
        text = _ip_refused_sentence(names, ev, actor)
    elif ev.action == "access.device_refused":
        text = _device_refused_sentence(names, ev, actor)
    elif ev.action.startswith("auth.mfa_"):
        text = _mfa_sentence(names, ev, actor)
    else:
        text = _sign_in_sentence(names, ev, actor)
    return Described(actor, text, [])


def describe(names: Names, ev: Any) -> Described:
    """Read ``ev`` out: its actor, a headline sentence and one line per change."""
    actor = names.actor(ev.actor_membership_id, ev.actor_user_id)
    if ev.action in SECURITY_EVENTS:
        return _security(names, ev, actor)
    changes = list((ev.detail or {}).get("changes") or [])
    own = sentence_for(ev.action)
    if own is not None:
        text = own(names, ev, actor)
        lines = [change_line(names, c, ev) for c in changes if "kind" in c]
        if not lines:
            found = diff(names, ev.before, ev.after)
            lines = [Line(text, found)] if found else []
        return Described(actor, text, lines)
    if not changes or ev.action.startswith("shared.") or ev.action.startswith("member.invite"):
        line = Line(_event_sentence(names, ev, actor), diff(names, ev.before, ev.after))
        return Described(actor, line.text, [line] if line.diff else [])
    local = Names(**{**names.__dict__, "roles": {**_role_names(changes), **names.roles}})
    lines = [change_line(local, c, ev) for c in changes if "kind" in c]
    main = next((i for i, c in enumerate(changes) if c.get("action") == ev.action), 0)
    headline = (lines[main].text if lines else ev.action) + f" by {actor}"
    if len(lines) > 1:
        headline += f" (+{len(lines) - 1} more)"
    return Described(actor, headline, lines)


def sentence_text(described: Described) -> str:
    """The headline and the changes as plain text (the CSV's ``summary``/``changes``)."""
    return "; ".join(
        line.text + (" (" + ", ".join(f"{f}: {o} → {n}" for f, o, n in line.diff) + ")"
                     if line.diff else "")
        for line in described.lines)
