"""Headlines of the events that services record themselves, in names.

A policy change is read from its recorded changes (:mod:`.sentences`); the
events below are written by the code that did the work (an approval, an
alert, a cap, the workspace lifecycle, a file, an import, a review) and
carry their facts in ``detail``, ``before``/``after`` and ``target``.
Each reads as one sentence that names the member, role, workspace or
request it is about. Targets written for machines ("request #4: ...",
"member #9 Ann") are never shown as they are: the id is dropped or the
row is named through :class:`.names.Names`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .names import Names

#: The target of an event about a record its reader may not view (see
#: :func:`.reading.as_read_by`): the file's name or the record's id is left out.
WITHHELD = "a record you cannot see"

#: "request #4: Export 1,200 deals" -> "Export 1,200 deals"
_NUMBERED = re.compile(r"^[a-z ]+#\d+:?\s*")


def _summary(ev: Any) -> str:
    """The event's target without its machine prefix ("request #4: ")."""
    return _NUMBERED.sub("", ev.target or "").strip()


def _count(n: Any, noun: str) -> str:
    value = n if isinstance(n, int) else 0
    return f"{value} {noun}" + ("" if value == 1 else "s")


def _cap(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    role = d.get("role") or ev.target or "a role"
    old = (ev.before or {}).get("max_records")
    new = (ev.after or {}).get("max_records")
    now = f"at most {new} {ev.resource} per holder" if new is not None else \
        f"no cap on {ev.resource}"
    was = f"at most {old}" if old is not None else "no cap"
    return f"{role}: {now} (was {was}), set by {actor}"


def _approval(names: Names, ev: Any, actor: str) -> str:
    d, what = ev.detail or {}, _summary(ev) or "a change"
    outcome = ev.action.split(".", 1)[1]
    if outcome == "requested":
        return f"{actor} asked for approval: {what}"
    if outcome == "downloaded":
        return f"{actor} downloaded the approved file {what}"
    if outcome == "expired":
        return f"Approval request expired unanswered: {what}"
    if outcome == "failed":
        failure = f" ({d['failure']})" if d.get("failure") else ""
        return f"Approved change could not be applied: {what}{failure}"
    if outcome == "executed":
        return f"Approved change applied: {what}"
    return f"Approval request {outcome} by {actor}: {what}"


def _approval_policy(names: Names, ev: Any, actor: str) -> str:
    ops = (ev.after or {}).get("operations") or []
    text = f"Approval policy changed by {actor}"
    return text + (f": approval needed for {', '.join(map(str, ops))}" if ops else
                   ": no operation needs approval")


def _alert(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    rule = str(d.get("rule") or "an alert").replace("_", " ")
    severity = f"{d['severity']} " if d.get("severity") else ""
    text = f"{severity}alert '{rule}' {ev.action.split('.', 1)[1]} by {actor}"
    return text[0].upper() + text[1:]


def _settings(label: str) -> Callable[[Names, Any, str], str]:
    def sentence(names: Names, ev: Any, actor: str) -> str:
        changed = (ev.detail or {}).get("settings") or {
            k: 1 for k in (ev.after or {}) if (ev.before or {}).get(k) != (ev.after or {}).get(k)}
        fields = ", ".join(str(k).replace("_", " ") for k in sorted(changed))
        return f"{label} changed by {actor}" + (f": {fields}" if fields else "")
    return sentence


def _workspace(names: Names, ev: Any, actor: str) -> str:
    d, name = ev.detail or {}, ev.target or names.workspace(ev.workspace_id)
    verb = ev.action.split(".", 1)[1]
    if verb == "ownership_transferred":
        return (f"Ownership of {name} transferred from {d.get('previous') or 'the Owner'} "
                f"to {d.get('to') or 'a member'} by {actor}")
    if verb == "deleted":
        ended = d.get("agreements_ended")
        until = str(d.get("purge_after") or "")[:16].replace("T", " ")
        return (f"Workspace {name} deleted by {actor}" + (f"; restorable until {until} UTC"
                                                          if until else "")
                + (f"; {_count(ended, 'sharing agreement')} ended" if ended else ""))
    if verb == "exported":
        return f"Workspace {name} exported by {actor} ({_count(d.get('rows'), 'row')})"
    if verb == "purged":
        return f"Workspace {name} purged for good"
    return f"Workspace {name} {verb} by {actor}"


def _attachment(names: Names, ev: Any, actor: str) -> str:
    verb = {"uploaded": "attached", "downloaded": "downloaded"}.get(
        ev.action.rpartition(".")[2], "removed")
    if ev.target == WITHHELD:
        return f"{actor} {verb} a file on {WITHHELD}"
    return f"{actor} {verb} the file {ev.target or 'a file'}"


def _picture(names: Names, ev: Any, actor: str) -> str:
    if ev.action.endswith(".set"):
        return f"{actor} set a new profile picture"
    return f"{actor} removed their profile picture"


def _imported(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    text = f"{actor} imported {_count(d.get('rows'), 'row')} of {ev.resource or 'records'}"
    if d.get("neutralised"):
        text += f" ({_count(d['neutralised'], 'formula cell')} neutralised)"
    return text


def _reassigned(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    counts = ev.after if isinstance(ev.after, dict) else {}
    moved = ", ".join(f"{n} {res}" for res, n in sorted(counts.items()) if n)
    return (f"Records of {names.user(d.get('from_user_id'))} reassigned to "
            f"{names.user(d.get('to_user_id'))} by {actor}" + (f" ({moved})" if moved else ""))


def _joined(names: Names, ev: Any, actor: str) -> str:
    return f"{actor} joined the workspace"


def _member_status(names: Names, ev: Any, actor: str) -> str:
    verb = ev.action.split(".", 1)[1]
    return f"{ev.target or 'A member'} {verb} by {actor}"


def _token_issued(names: Names, ev: Any, actor: str) -> str:
    token = (ev.detail or {}).get("token")
    named = f" “{token}”" if token else ""
    return f"{actor} issued the API token{named} to {ev.target or 'a member'}"


def _token_revoked(names: Names, ev: Any, actor: str) -> str:
    token = (ev.detail or {}).get("token")
    named = f" “{token}”" if token else ""
    return f"{actor} revoked the API token{named} of {ev.target or 'a member'}"


def _signed_off(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    who = names.member(d["membership_id"]) if d.get("membership_id") else ev.target
    roles = (ev.after or {}).get("roles") or []
    return (f"Access of {who} signed off by {actor}"
            + (f" (roles: {', '.join(map(str, roles))})" if roles else " (no roles)"))


def _certification(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    verb = ev.action.split(".", 1)[1]
    if verb == "started":
        about = f" on {d['chosen_resource']}" if d.get("chosen_resource") else ""
        return f"Access review started{about} by {actor} ({_count(d.get('items'), 'member')})"
    if verb == "completed":
        return (f"Access review completed by {actor}: {d.get('kept', 0)} kept, "
                f"{d.get('revoked', 0)} revoked, {d.get('refused', 0)} refused")
    if verb == "refreshed":
        changes = [str(c) for c in d.get("changes") or []]
        return (f"Access review lines refreshed by {actor}: "
                + ("; ".join(changes) if changes else "nothing changed"))
    who = names.member(d["membership_id"]) if d.get("membership_id") else ev.target
    roles = ", ".join(map(str, d.get("roles") or [])) or "nothing left to take"
    return f"Access review: {who} lost {roles}, revoked by {actor}"


def _campaign(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    if ev.action.endswith("unsubscribe"):
        return "An address unsubscribed from campaign mail"
    if ev.action.endswith("send_failed"):
        return (f"The mail server failed during {actor}'s campaign send: "
                f"{_count(d.get('sent'), 'mail')} sent, {_count(d.get('failed'), 'mail')} not")
    skipped = sum(int(d.get(k) or 0) for k in ("skipped_hidden", "skipped_unsubscribed",
                                                "skipped_no_address"))
    return (f"{actor} sent a campaign to {_count(d.get('sent'), 'recipient')}"
            + (f" ({skipped} skipped)" if skipped else ""))


def _adopt(names: Names, ev: Any, actor: str) -> str:
    d = ev.detail or {}
    filled = sum(int(v or 0) for v in (d.get("backfilled") or {}).values())
    return (f"Existing data adopted into {names.workspace(ev.workspace_id)}: "
            f"{_count(d.get('members_added'), 'member')} added, "
            f"{_count(filled, 'record')} placed in the workspace")


def _view_as(names: Names, ev: Any, actor: str) -> str:
    verb = "started" if ev.action.endswith("started") else "stopped"
    viewed = names.member((ev.detail or {}).get("viewed_membership_id"))
    return f"{actor} {verb} viewing the workspace as {viewed}"


#: Action (or ``prefix.*``) -> its headline.
SENTENCES: dict[str, Callable[[Names, Any, str], str]] = {
    "role.cap_changed": _cap, "approval.*": _approval,
    "approval_policy.changed": _approval_policy, "alert.*": _alert,
    "alert_settings.changed": _settings("Alert settings"),
    "review_schedule.changed": _settings("Access review schedule"),
    "workspace.ownership_transferred": _workspace, "workspace.deleted": _workspace,
    "workspace.restored": _workspace, "workspace.exported": _workspace,
    "workspace.purged": _workspace, "attachment.*": _attachment,
    "records.imported": _imported, "records.reassigned": _reassigned,
    "member.joined": _joined, "member.signed_off": _signed_off,
    "member.deactivated": _member_status, "member.reactivated": _member_status,
    "member.token_issued": _token_issued,
    "member.token_revoked": _token_revoked,
    "certification.*": _certification, "campaign.*": _campaign, "adopt": _adopt,
    "view_as.*": _view_as, "profile_picture.*": _picture,
}


def sentence_for(action: str) -> Callable[[Names, Any, str], str] | None:
    """The headline writer of ``action``, if a service records it by hand."""
    return SENTENCES.get(action) or SENTENCES.get(action.split(".", 1)[0] + ".*")


#: How the audit page's event filter names an action (others: :func:`action_label`).
ACTION_LABELS: dict[str, str] = {
    "export": "Export", "shared.export": "Export of shared records",
    "shared.write": "Change to shared records", "access.denied": "Refused attempt",
    "access.requested": "Access requested", "adopt": "Existing data adopted",
    "role.cap_changed": "Record cap of a role", "sod.changed": "Segregation of duties",
    "plan.changed": "Plan changed", "member.signed_off": "Access signed off",
    "certification.started": "Access review started",
    "certification.completed": "Access review completed",
    "certification.refreshed": "Access review lines refreshed",
    "certification.revoked": "Access revoked in a review",
    "records.reassigned": "Records reassigned", "records.imported": "Records imported",
    "view_as.started": "Viewing as a member", "view_as.stopped": "Stopped viewing as",
    "member.token_issued": "API token issued to a member",
    "member.token_revoked": "A member's API token revoked",
    "profile_picture.set": "Profile picture set",
    "profile_picture.removed": "Profile picture removed",
}


def action_label(action: str) -> str:
    """``role.cap_changed`` -> "Record cap of a role"; unknown: "Grant: added"."""
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    head, _, tail = action.partition(".")
    text = head.replace("_", " ") + (": " + tail.replace("_", " ") if tail else "")
    return text[0].upper() + text[1:] if text else action
