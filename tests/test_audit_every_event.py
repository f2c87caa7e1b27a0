"""Every audit event reads in names: the events the routes write, driven through the
routes, and one event of every other kind the plugin and the demo record.

The audit trail is read by people, so no headline, change line or diff may
show a raw id (``user #10``, ``role #3``, ``agreement #2 workspace #2 → #1``)
or fall back to the bare action code. The second test scans the source for
every action the code records, so a new kind of event without its sentence
fails here.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import audit, tokens, workspaces
from crm_rbac_plugin.audit import events as audit_events
from crm_rbac_plugin.certification import report, runs
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_api import Api
from tests.test_audit import _drivers

ROOT = Path(__file__).resolve().parents[1]
#: An id shown where a name belongs.
RAW_ID = re.compile(r"\b(user|member|membership|role|agreement|workspace|request|run|alert|"
                    r"campaign|department|grant|assignment) #\d|#\d+ *→|\bid \d")


def read_out(workspace_id: int) -> list[tuple[str, str, list[str]]]:
    """Each event of the workspace as the page reads it: (action, headline, other texts)."""
    A = rbac.models.AuditEvent
    db.session.expire_all()
    evs = list(db.session.scalars(sa.select(A).where(A.workspace_id == workspace_id)
                                  .order_by(A.id)))
    names = audit.load_names(rbac, workspace_id, evs)
    out = []
    for ev in evs:
        d = audit.describe(names, ev)
        rest = [line.text for line in d.lines]
        rest += [" ".join(cell) for line in d.lines for cell in line.diff]
        out.append((ev.action, d.headline, rest))
    return out


def assert_named(read: list[tuple[str, str, list[str]]]) -> None:
    for action, headline, rest in read:
        for text in (headline, *rest):
            assert not RAW_ID.search(text), (action, text)
            assert "…" not in text, (action, text)
        generic = action.replace(".", " ").replace("_", " ").capitalize() + " by "
        assert not re.fullmatch(re.escape(generic) + r"[\w ]+", headline), (action, headline)


def page_headlines(client: Any, **args: Any) -> list[str]:
    page = client.get("/settings/audit", query_string=args)
    assert page.status_code == 200
    return [html.unescape(h) for h in
            re.findall(r'<p class="rbac-audit-headline">(.*?)</p>', page.text)]


def test_every_route_event_reads_in_names(app: Flask, world: SimpleNamespace,
                                          login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "audit test")
    db.session.commit()
    for step in _drivers(world, client, Api(app, plaintext), app):
        if step.prepare is not None:
            step.prepare()
        assert step.drive().status_code in (200, 201, 204, 302), step.endpoint
    ours, theirs = read_out(world.ws.id), read_out(world.ws2.id)
    assert_named(ours)
    assert_named(theirs)
    said = {headline for _, headline, _ in ours}
    expected = [
        "Segregation of duties: Finance and Junior Rep may no longer be held together by Owner",
        "Records of Member2 reassigned to Member by Owner",
        "Department Sales given the role Finance by Owner",
        "Department Sales no longer gives the role Finance by Owner",
        "Finance: at most 50 deals per holder (was no cap), set by Owner",
        "Audited One joined the workspace",
        "audited.one@example.test invited by Owner as Viewer",
        "Access of Member signed off by Owner (roles: Member)",
        "Access review: Manager lost Manager, revoked by Owner",
    ]
    for sentence in expected:
        assert any(h.startswith(sentence) for h in said), (sentence, sorted(said))
    conditions = [t for _, _, rest in ours for t in rest if t.startswith("access condition")]
    assert "access condition always every day 09:00-18:00 UTC" in conditions
    assert "access condition always networks 10.0.0.0/8" in conditions
    # The page shows the same sentences (its newest 50 events).
    shown = page_headlines(client)
    assert shown and all(not RAW_ID.search(h) for h in shown)
    assert any(h.startswith("Finance: at most 50 deals per holder") for h in shown)
    # The event filter names each action in words too.
    page = client.get("/settings/audit").text
    assert '<option value="role.cap_changed">Record cap of a role</option>' in page
    assert '<option value="department_role.added">Department role: added</option>' in page
    assert ">role.cap_changed</option>" not in page


# -- one of every other kind -----------------------------------------------------------------

RECORDERS = {"record", "audit", "audit_action", "_record", "_announce"}


def recorded_actions() -> tuple[set[str], set[str]]:
    """Actions the source records: (exact actions, prefixes of f-string actions)."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for root in ("crm_rbac_plugin", "crm_app"):
        for path in (ROOT / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name not in RECORDERS:
                    continue
                for arg in node.args[:3]:
                    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                        pass
                    elif name == "_announce":  # an approval's outcome
                        exact.add(f"approval.{arg.value}")
                    elif re.fullmatch(r"[a-z_]+\.[a-z_]+|export|adopt", arg.value):
                        exact.add(arg.value)
                    elif isinstance(arg, ast.JoinedStr) and isinstance(
                            arg.values[0], ast.Constant):
                        prefixes.add(str(arg.values[0].value))
    exact |= set(audit.SECURITY_EVENTS) | {"access.denied", "export", "shared.export"}
    return exact, prefixes


def catalogue(world: SimpleNamespace) -> list[tuple[str, dict[str, Any], str]]:
    """(action, record() arguments as the emitter passes them, a phrase the headline holds)."""
    m = world.members
    finance = workspaces.role_by_key(rbac, world.ws, "finance")
    user = str(world.users["member2"].id)
    return [
        ("role.cap_changed", dict(resource="deals", target="Finance", role="Finance",
                                  before={"max_records": 10}, after={"max_records": 20}),
         "Finance: at most 20 deals per holder (was at most 10)"),
        ("approval.requested", dict(resource="approvals", target="request #7: Export 900 deals",
                                    operation="export", rows=900, reason="quarter end"),
         "Owner asked for approval: Export 900 deals"),
        ("approval.approved", dict(resource="approvals", target="request #7: Export 900 deals",
                                   operation="export", reason="ok"),
         "Approval request approved by Owner: Export 900 deals"),
        ("approval.rejected", dict(resource="approvals", target="request #7: Export 900 deals"),
         "rejected by Owner: Export 900 deals"),
        ("approval.cancelled", dict(resource="approvals", target="request #7: Export 9 deals"),
         "cancelled by Owner: Export 9 deals"),
        ("approval.expired", dict(resource="approvals", target="request #7: Export 9 deals"),
         "expired unanswered: Export 9 deals"),
        ("approval.executed", dict(resource="approvals", target="request #7: Delete Temp"),
         "Approved change applied: Delete Temp"),
        ("approval.failed", dict(resource="approvals", target="request #7: Delete Temp",
                                 failure="the role is gone"),
         "could not be applied: Delete Temp (the role is gone)"),
        ("approval.downloaded", dict(resource="approvals", target="request #7: deals.csv"),
         "Owner downloaded the approved file deals.csv"),
        ("approval_policy.changed", dict(resource="settings", target="approval policy",
                                         before={"operations": []},
                                         after={"operations": ["export", "plan"]}),
         "approval needed for export, plan"),
        ("alert.acknowledged", dict(resource="settings", target="alert #3 export_spike",
                                    before={"status": "open"}, after={"status": "acknowledged"},
                                    alert_id=3, rule="export_spike", severity="high"),
         "High alert 'export spike' acknowledged by Owner"),
        ("alert.resolved", dict(resource="settings", target="alert #3 export_spike",
                                alert_id=3, rule="export_spike"),
         "Alert 'export spike' resolved by Owner"),
        ("alert_settings.changed", dict(resource="settings", target="alert settings",
                                        settings={"export_rows": [100, 500]}),
         "Alert settings changed by Owner: export rows"),
        ("review_schedule.changed", dict(resource="settings", target="access review schedule",
                                         before={"every_days": 90}, after={"every_days": 30}),
         "Access review schedule changed by Owner: every days"),
        ("workspace.exported", dict(resource="settings", target="Acme Sales", rows=12),
         "Workspace Acme Sales exported by Owner (12 rows)"),
        ("workspace.ownership_transferred", dict(
            resource="settings", target="Acme Sales", to="Admin", previous="Owner",
            before={"owner_membership_id": m["owner"].id},
            after={"owner_membership_id": m["admin"].id}),
         "Ownership of Acme Sales transferred from Owner to Admin by Owner"),
        ("workspace.deleted", dict(resource="settings", target="Acme Sales",
                                   purge_after="2030-01-02T03:04:00", agreements_ended=1),
         "Workspace Acme Sales deleted by Owner; restorable until 2030-01-02 03:04 UTC"),
        ("workspace.restored", dict(resource="settings", target="Acme Sales",
                                    deleted_at="2030-01-01T00:00:00"),
         "Workspace Acme Sales restored by Owner"),
        ("workspace.purged", dict(resource="settings", target="Old Co", rows={"leads": 3},
                                  actor_ids=(None, None)),
         "Workspace Old Co purged for good"),
        ("attachment.uploaded", dict(resource="leads", target="plan.pdf on leads #4",
                                     size=10, content_type="application/pdf"),
         "Owner attached the file plan.pdf on leads #4"),
        ("attachment.deleted", dict(resource="leads", target="plan.pdf on leads #4"),
         "Owner removed the file plan.pdf on leads #4"),
        ("attachment.downloaded", dict(resource="leads", target="plan.pdf on leads #4",
                                       size=10),
         "Owner downloaded the file plan.pdf on leads #4"),
        ("records.imported", dict(resource="leads", target="leads.csv", rows=3, neutralised=1),
         "Owner imported 3 rows of leads (1 formula cell neutralised)"),
        ("records.reassigned", dict(target=f"user {user} -> user {user}",
                                    after={"leads": 2}, from_user_id=user, to_user_id=user,
                                    ids=None),
         "Records of Member2 reassigned to Member2 by Owner (2 leads)"),
        ("member.joined", dict(target="new@example.test"), "Owner joined the workspace"),
        ("member.signed_off", dict(resource="members", target="Viewer",
                                   after={"roles": ["Viewer"]}, membership_id=m["viewer"].id),
         "Access of Viewer signed off by Owner (roles: Viewer)"),
        ("certification.started", dict(resource="members", target="certification run #2",
                                       run_id=2, items=5, chosen_resource=None),
         "Access review started by Owner (5 members)"),
        ("certification.revoked", dict(resource="members", target="Viewer", run_id=2,
                                       item_id=1, membership_id=m["viewer"].id,
                                       roles=["Viewer"], reason="r"),
         "Access review: Viewer lost Viewer, revoked by Owner"),
        ("certification.refreshed", dict(resource="members", target="certification run #2",
                                         run_id=2, changes=["Viewer gained Admin"]),
         "Access review lines refreshed by Owner: Viewer gained Admin"),
        ("certification.completed", dict(resource="members", target="certification run #2",
                                         run_id=2, kept=4, revoked=1, refused=0),
         "Access review completed by Owner: 4 kept, 1 revoked, 0 refused"),
        ("campaign.send", dict(resource="campaigns", target="campaign #5", sent=3,
                               skipped_hidden=1, skipped_unsubscribed=0, skipped_no_address=0),
         "Owner sent a campaign to 3 recipients (1 skipped)"),
        ("campaign.send_failed", dict(resource="campaigns", target="campaign #5", sent=2,
                                      failed=3, error="SMTPServerDisconnected"),
         "The mail server failed during Owner's campaign send: 2 mails sent, 3 mails not"),
        ("campaign.unsubscribe", dict(resource="campaigns", target="an address unsubscribed",
                                      actor_ids=(None, None)),
         "An address unsubscribed from campaign mail"),
        ("adopt", dict(workspace_created=False, owner="owner@example.test", members_added=2,
                       role="Member", backfilled={"leads": 4}),
         "Existing data adopted into Acme Sales: 2 members added, 4 records"),
        ("view_as.started", dict(resource="members", target=f"member #{m['viewer'].id} Viewer",
                                 viewed_membership_id=m["viewer"].id),
         "Owner started viewing the workspace as Viewer"),
        ("view_as.stopped", dict(resource="members", target=f"member #{m['viewer'].id}",
                                 viewed_membership_id=m["viewer"].id),
         "Owner stopped viewing the workspace as Viewer"),
        ("profile_picture.set", dict(resource="members", target="Owner",
                                     content_type="image/webp", size=5120),
         "Owner set a new profile picture"),
        ("profile_picture.removed", dict(resource="members", target="Owner"),
         "Owner removed their profile picture"),
        ("access.requested", dict(resource="leads", target="leads.export",
                                  permission="leads.export", note=None, notified=[1]),
         "Owner asked for leads.export"),
        ("access.denied", dict(resource="deals", target="deals #3", action="export",
                               record_id=3, reason="no grant"),
         "Owner was refused export on deals"),
        ("export", dict(resource="leads", target="leads.csv", rows=4),
         "Owner exported leads (4 rows)"),
        ("shared.export", dict(workspace_id=world.ws.id, resource="clients",
                               target=f"clients: 2 shared rows exported by workspace "
                                      f"#{world.ws2.id}", rows=2, side="granting",
                               receiving_workspace_id=world.ws2.id),
         "Beta Education exported 2 shared clients"),
        ("member.invited", dict(target="new@example.test",
                                after={"roles": [finance.name], "department": "Sales"}),
         "new@example.test invited by Owner as Finance in Sales"),
        ("member.invite_resent", dict(target="new@example.test", invitation_id=4),
         "new@example.test invitation resent by Owner"),
        ("member.invite_revoked", dict(target="new@example.test", invitation_id=4),
         "new@example.test invitation revoked by Owner"),
        ("member.deactivated", dict(resource="members", target="Viewer",
                                    before={"status": "active"}, after={"status": "inactive"}),
         "Viewer deactivated by Owner"),
        ("member.reactivated", dict(resource="members", target="Viewer",
                                    before={"status": "inactive"}, after={"status": "active"}),
         "Viewer reactivated by Owner"),
        ("member.token_issued", dict(resource="members", target="Viewer", token="CI import",
                                     prefix="rbac_abcd"),
         "Owner issued the API token “CI import” to Viewer"),
        ("member.token_revoked", dict(resource="members", target="Viewer", token="CI import",
                                      prefix="rbac_abcd"),
         "Owner revoked the API token “CI import” of Viewer"),
        ("auth.login", dict(resource="account", target="owner@example.test",
                            user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"),
         "Owner signed in"),
        ("auth.failed", dict(resource="account", target="owner@example.test", failures=2),
         "Wrong password for Owner"),
        ("auth.throttled", dict(resource="account", target="owner@example.test",
                                wait_seconds=30), "Sign-in to Owner"),
        ("auth.reset_requested", dict(resource="account", target="owner@example.test",
                                      sent=True, limited=False),
         "Password reset asked for Owner"),
        ("auth.password_reset", dict(resource="account", target="owner@example.test"),
         "Owner set a new password from a reset link"),
        ("auth.mfa_enrolled", dict(resource="members", target=f"user #{user}"),
         "Owner turned on two-factor authentication"),
        ("auth.mfa_failed", dict(resource="account", target=f"user #{user}"),
         "Owner entered a wrong two-factor code"),
        ("auth.mfa_reset", dict(resource="members", target=f"user #{user}",
                                membership_id=m["member2"].id, was_enrolled=True),
         "Owner reset the two-factor authentication of Member2 (it was on)"),
        ("auth.mfa_reset", dict(resource="members", target=f"user #{user}",
                                membership_id=m["member2"].id, was_enrolled=True,
                                via="command line"),
         "reset the two-factor authentication of Member2 (it was on) from the command line"),
        ("auth.mfa_recovery_codes", dict(resource="account", target=f"user #{user}"),
         "Owner made new recovery codes"),
        ("auth.mfa_turned_off", dict(resource="members", target=f"user #{user}"),
         "Owner turned off their two-factor authentication"),
        ("session.revoked", dict(resource="account", target="Member2", reason="admin",
                                 count=2), "Owner signed Member2 out everywhere (2 sessions)"),
        ("security_policy.changed", dict(resource="settings", target="security policy",
                                         changes={"mfa_required": [False, True]}),
         "Security policy changed by Owner: mfa required"),
        ("access.ip_refused", dict(resource="account", target="owner@example.test",
                                   path="/leads", via="session"),
         "Owner was refused on /leads"),
        ("access.device_refused", dict(resource="account", target="owner@example.test",
                                       path="/leads", device="tablet"),
         "Owner was refused on /leads: tablets are not allowed"),
    ]


def test_every_event_kind_reads_in_names(app: Flask, world: SimpleNamespace,
                                         login: Any) -> None:
    table = catalogue(world)
    exact, prefixes = recorded_actions()
    covered = {action for action, _, _ in table}
    assert exact - covered == set(), ("an action the code records has no sentence test here",
                                      exact - covered)
    for prefix in prefixes:
        assert any(a.startswith(prefix) for a in covered), prefix
    owner = world.members["owner"]
    ws_id = world.ws.id
    A = rbac.models.AuditEvent
    first = db.session.scalar(sa.select(sa.func.max(A.id))) or 0
    for action, kwargs, _ in table:
        kwargs = {"workspace_id": ws_id, "actor_ids": (world.users["owner"].id, owner.id),
                  **kwargs}
        if action == "access.denied":  # refusals.py writes its row itself, as here
            user_id, membership_id = kwargs.pop("actor_ids")
            base = {k: kwargs.pop(k) for k in ("workspace_id", "resource", "target")}
            db.session.add(A(**base, at=utcnow(), actor_user_id=user_id,
                             actor_membership_id=membership_id, action=action, detail=kwargs))
        else:
            audit_events.record(rbac, action, **kwargs)
        db.session.flush()
    db.session.commit()
    read = [r for r in read_out(ws_id)][-len(table):]
    assert [a for a, _, _ in read] == [a for a, _, _ in table]
    assert_named(read)
    for (action, _, phrase), (_, headline, _) in zip(table, read, strict=True):
        assert phrase in headline, (action, headline)
    assert first < db.session.scalar(sa.select(sa.func.max(A.id)))
    shown = page_headlines(login(world.users["owner"], world.ws))
    for _, _, phrase in table[-50:]:
        assert any(phrase in h for h in shown), phrase


def test_member_and_role_filters_find_the_events_services_record(
        world: SimpleNamespace, login: Any) -> None:
    """A sign-off, a two-factor reset, a record cap and a segregation rule are about a
    member or a role."""
    client = login(world.users["owner"], world.ws)
    finance = workspaces.role_by_key(rbac, world.ws, "finance")
    junior = workspaces.role_by_key(rbac, world.ws, "junior_rep")
    viewer, member = world.members["viewer"], world.members["member"]
    assert client.post(f"/settings/access-review/members/{viewer.id}/sign-off"
                       ).status_code == 302
    assert client.post(f"/settings/roles/{finance.id}/caps",
                       data={"resource": "deals", "max_records": "50"}).status_code == 302
    audit_events.record(rbac, "auth.mfa_reset", workspace_id=world.ws.id, resource="members",
                        target=f"user #{world.users['member'].id}", membership_id=member.id,
                        was_enrolled=True,
                        actor_ids=(world.users["owner"].id, world.members["owner"].id))
    db.session.commit()
    about_viewer = page_headlines(client, member=viewer.id)
    assert any(h.startswith("Access of Viewer signed off by Owner") for h in about_viewer)
    assert not any("two-factor" in h for h in about_viewer)
    about_member = page_headlines(client, member=member.id)
    assert any("reset the two-factor authentication of Member (it was on)" in h
               for h in about_member)
    assert not any("signed off" in h for h in about_member)
    about_finance = page_headlines(client, role=finance.id)
    assert any(h.startswith("Finance: at most 50 deals per holder") for h in about_finance)
    about_junior = page_headlines(client, role=junior.id)
    assert not any("per holder" in h for h in about_junior)
    assert not any("Segregation" in h for h in about_junior)
    assert client.post("/settings/conflicts", data={
        "role_a_id": str(finance.id), "role_b_id": str(junior.id)}).status_code == 302
    sod = "Segregation of duties: Finance and Junior Rep may no longer be held together"
    assert any(h.startswith(sod) for h in page_headlines(client, role=junior.id))
    assert not any(h.startswith(sod) for h in page_headlines(
        client, role=workspaces.role_by_key(rbac, world.ws, "viewer").id))


def test_the_certification_report_words_its_events_in_names(world: SimpleNamespace) -> None:
    """The report's "Permission changes" reads each event as the audit page does."""
    owner = rbac.access_for(world.members["owner"])
    with rbac.as_member(owner):
        run = runs.start_run(rbac, owner, "deals")
        db.session.commit()
    cells = [row[2] for row in report.changes_section(rbac, run).rows]
    assert cells and all(not RAW_ID.search(c) for c in cells), cells
    assert any(c.startswith("Access review started on deals by Owner") for c in cells), cells
