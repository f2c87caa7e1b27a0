"""The members pages: sorting, paging and search; bulk changes; CSV export; invite;
counted confirmations; the access review's actions; where /settings/ lands.

Every refusal is checked to change nothing (a snapshot of the plugin's
tables, invitations, users and record owners before and after).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db, mail
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import give_role_admin, role
from tests.test_team import RECORD_MODELS, membership, snapshot

OWN_PAGES = ("/settings/members", "/settings/members/invite", "/settings/members/{mgr}",
             "/settings/members/{mgr}/reassign", "/settings/departments", "/settings/profile",
             "/settings/tokens", "/settings/access-review")


def rows(html: str) -> list[str]:
    """The members list's rows, by email, in page order."""
    return re.findall(r'data-member="([^"]+)"', html)


def status_of(key: str, world: SimpleNamespace) -> str:
    db.session.expire_all()
    return str(db.session.get(rbac.models.Membership, world.members[key].id).status)


def role_keys(key: str, world: SimpleNamespace) -> set[str]:
    db.session.expire_all()
    mem = db.session.get(rbac.models.Membership, world.members[key].id)
    return {mr.role.key or mr.role.name for mr in mem.member_roles}


def bulk(client: Any, action: str, ids: list[int], **extra: Any) -> Any:
    return client.post("/settings/members/bulk", data={"members": ids, "action": action, **extra})


def audit_actions(action: str) -> list[Any]:
    A = rbac.models.AuditEvent
    return list(db.session.scalars(sa.select(A).where(A.action == action).order_by(A.id)))


def add_members(world: SimpleNamespace, count: int) -> None:
    for i in range(count):
        user = User(email=f"extra{i:02d}@example.test", name=f"Extra {i:02d}",
                    password_hash="x")
        db.session.add(user)
        workspaces.add_member(rbac, world.ws, user, ["viewer"])
    db.session.commit()


# -- the pages use the design system -------------------------------------------------------


def test_every_page_uses_the_components_and_no_default_control(world: SimpleNamespace,
                                                                login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    for url in OWN_PAGES:
        page = owner.get(url.format(mgr=world.members["manager"].id))
        assert page.status_code == 200, url
        html = page.text
        assert 'class="rbac-page-header"' in html, url
        assert "<select multiple" not in html and " multiple" not in html, url
        assert 'style="' not in html and "<script>" not in html, url
        for table in re.findall(r"<table.*?</table>", html, re.DOTALL):
            before = html.split(table, 1)[0]
            assert before.rstrip().endswith('tabindex="0">'), (url, "table outside table_wrap")


# -- sorting, paging, search ---------------------------------------------------------------


def test_members_are_sorted_and_paged_on_the_server(world: SimpleNamespace,
                                                    login: Any) -> None:
    add_members(world, 30)
    owner = login(world.users["owner"], world.ws)
    first = owner.get("/settings/members?sort=email")
    assert first.status_code == 200
    emails = rows(first.text)
    assert len(emails) == 25 and emails == sorted(emails)
    assert "Page 1 of 2" in first.text and 'rel="next"' in first.text
    second = rows(owner.get("/settings/members?sort=email&page=2").text)
    assert len(second) == 40 - 25  # the world's 10 members and 30 more and not set(second) & set(emails)
    desc = rows(owner.get("/settings/members?sort=email&dir=desc").text)
    assert desc[0] == "viewer@example.test"
    # Last activity: the members seen sort first, those never seen last.
    with rbac.system():
        world.members["viewer"].last_seen_at = utcnow()
        db.session.commit()
    recent = rows(owner.get("/settings/members?sort=last_activity&dir=desc").text)
    assert set(recent[:2]) == {"owner@example.test", "viewer@example.test"}
    by_dept = rows(owner.get("/settings/members?sort=department&q=example").text)
    assert by_dept.index("manager@example.test") < by_dept.index("extra00@example.test")
    # Bad sort keys, directions and pages answer 400 with the default list, never 500.
    for bad in ("sort=password_hash", "dir=sideways", "page=abc", "page=0"):
        page = owner.get(f"/settings/members?{bad}")
        assert page.status_code == 400, bad
        assert len(rows(page.text)) == 25, bad
    assert owner.get("/settings/members?page=999").status_code == 200  # the last page


def test_search_matches_name_email_role_and_department(world: SimpleNamespace,
                                                       login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    by_role = rows(owner.get("/settings/members?q=viewer").text)
    assert "dual@example.test" in by_role and "viewer@example.test" in by_role
    assert "member@example.test" not in by_role
    by_dept = rows(owner.get("/settings/members?q=support").text)
    assert set(by_dept) == {"viewer@example.test", "client_success@example.test"}
    by_name = rows(owner.get("/settings/members?q=junior+rep").text)
    assert by_name == ["junior_rep@example.test"]
    sales = world.departments["sales"].id
    faceted = rows(owner.get(f"/settings/members?q=member&department={sales}").text)
    assert set(faceted) == {"member@example.test", "member2@example.test"}


# -- bulk changes --------------------------------------------------------------------------


def test_bulk_deactivate_and_reactivate_are_audited(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    page = owner.get("/settings/members")
    assert 'data-rbac-select-all="members"' in page.text
    assert "Deactivate {count} selected members?" in page.text
    assert page.text.count("data-rbac-needs-selection") == 5
    ids = [world.members["member"].id, world.members["member2"].id]
    done = bulk(owner, "deactivate", ids)
    assert done.status_code == 302
    assert status_of("member", world) == status_of("member2", world) == "inactive"
    targets = [ev.target for ev in audit_actions("member.deactivated")]
    assert sorted(targets) == ["Member", "Member2"]
    assert bulk(owner, "reactivate", ids).status_code == 302
    assert status_of("member", world) == "active" and status_of("member2", world) == "active"
    assert len(audit_actions("member.reactivated")) == 2


def test_bulk_is_all_or_nothing_and_names_each_refused_member(world: SimpleNamespace,
                                                              login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    before = snapshot()
    ids = [world.members["member"].id, world.members["owner"].id, world.members["admin"].id]
    refused = bulk(admin, "deactivate", ids)
    assert refused.status_code == 403
    assert "Nothing changed" in refused.text
    assert "Owner: Only an Owner can deactivate" in refused.text
    assert "Admin: You cannot deactivate yourself" in refused.text
    assert snapshot() == before and status_of("member", world) == "active"

    owner = login(world.users["owner"], world.ws)
    # Taking away a member's only role is refused (409): nobody loses it.
    member_role = role(world, "member").id
    only_role = bulk(owner, "remove_role", [world.members["member2"].id,
                                            world.members["member"].id], role_id=member_role)
    assert only_role.status_code == 409 and "Member2:" in only_role.text
    assert snapshot() == before
    # A pending member cannot be deactivated: the whole change is refused.
    with mail.record_messages():
        owner.post("/settings/members/invite", data={"email": "p@example.test",
                                                     "roles": [role(world, "viewer").id]})
    pending = membership("p@example.test", world.ws)
    before = snapshot()
    mixed = bulk(owner, "deactivate", [world.members["member"].id, pending.id])
    assert mixed.status_code == 409 and "p@example.test:" in mixed.text
    assert snapshot() == before


def test_bulk_role_and_department_changes_follow_the_single_rules(
        world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    finance = role(world, "finance").id
    ids = [world.members["member"].id, world.members["member2"].id]
    assert bulk(owner, "add_role", ids, role_id=finance).status_code == 302
    assert "finance" in role_keys("member", world) and "finance" in role_keys("member2", world)
    assert bulk(owner, "remove_role", ids, role_id=finance).status_code == 302
    assert "finance" not in role_keys("member", world)
    support = world.departments["support"].id
    assert bulk(owner, "department", ids, department_id=support).status_code == 302
    db.session.expire_all()
    assert {db.session.get(rbac.models.Membership, i).department_id for i in ids} == {support}
    assert bulk(owner, "department", ids, department_id="").status_code == 302
    db.session.expire_all()
    assert {db.session.get(rbac.models.Membership, i).department_id for i in ids} == {None}

    # Escalation: a role admin limited to their own leads cannot give Viewer to anyone.
    give_role_admin(world, "junior_rep")
    junior = login(world.users["junior_rep"], world.ws)
    before = snapshot()
    wide = bulk(junior, "add_role", ids, role_id=role(world, "viewer").id)
    assert wide.status_code == 403 and "Member:" in wide.text and "Member2:" in wide.text
    assert snapshot() == before
    # Only an Owner gives Admin.
    admin = login(world.users["admin"], world.ws)
    assert bulk(admin, "add_role", ids, role_id=role(world, "admin").id).status_code == 403
    assert snapshot() == before


def test_bulk_refuses_bad_input_other_workspaces_and_missing_rights(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    before = snapshot()
    member = world.members["member"].id
    outsider = db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.workspace_id == world.ws2.id))
    assert bulk(owner, "deactivate", [member, outsider.id]).status_code == 404
    other_role = workspaces.role_by_key(rbac, world.ws2, "viewer")
    assert bulk(owner, "add_role", [member], role_id=other_role.id).status_code == 404
    assert bulk(owner, "deactivate", []).status_code == 400
    assert bulk(owner, "explode", [member]).status_code == 400
    no_role = bulk(owner, "add_role", [member])
    assert no_role.status_code == 400 and "choose a role" in no_role.text
    manager = login(world.users["manager"], world.ws)  # member2 is not on their team
    assert bulk(manager, "deactivate", [world.members["member2"].id]).status_code == 403
    # The Manager gets the bulk actions (members.edit); the service keeps them to their team.
    assert "data-rbac-select-all" in manager.get("/settings/members").text
    app.config["WTF_CSRF_ENABLED"] = True
    assert bulk(owner, "deactivate", [member]).status_code == 400
    assert snapshot() == before


# -- CSV export ------------------------------------------------------------------------------


def test_csv_export_follows_the_filters_and_neutralises_formulas(world: SimpleNamespace,
                                                                 login: Any) -> None:
    with rbac.system():
        world.users["member"].name = '=HYPERLINK("http://evil.test","x")'
        db.session.commit()
    owner = login(world.users["owner"], world.ws)
    page = owner.get("/settings/members")
    assert "/settings/members.csv" in page.text
    sales = world.departments["sales"].id
    response = owner.get(f"/settings/members.csv?department={sales}&sort=email")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == ["Name", "Email", "Status", "Department", "Roles", "Last activity"]
    emails = [r[1] for r in table[1:]]
    assert emails == sorted(["manager@example.test", "member@example.test",
                             "member2@example.test", "junior_rep@example.test"])
    evil = next(r for r in table[1:] if r[1] == "member@example.test")
    assert evil[0].startswith("'=") and evil[3] == "Sales" and evil[4] == "Member"
    events = audit_actions("export")
    assert events and events[-1].resource == "members" and events[-1].detail["rows"] == 4
    assert owner.get("/settings/members.csv?sort=nope").status_code == 400
    manager = login(world.users["manager"], world.ws)  # members.view, no members.export
    assert manager.get("/settings/members.csv").status_code == 403
    assert "/settings/members.csv" not in manager.get("/settings/members").text


# -- invite ------------------------------------------------------------------------------------


def test_invite_with_checkboxes_a_department_and_an_end(world: SimpleNamespace,
                                                        login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    form = owner.get("/settings/members/invite").text
    assert 'type="checkbox" name="roles"' in form and "<select multiple" not in form
    assert 'name="department_id"' in form and 'name="expires_at"' in form
    end = (utcnow() + dt.timedelta(days=30)).replace(second=0, microsecond=0)
    support = world.departments["support"].id
    with mail.record_messages():
        done = owner.post("/settings/members/invite", data={
            "email": "temp@example.test", "roles": [role(world, "viewer").id],
            "department_id": support, "expires_at": end.strftime("%Y-%m-%dT%H:%M")})
    assert done.status_code == 302, done.text[:500]
    pending = membership("temp@example.test", world.ws)
    assert pending.department_id == support
    assert [mr.expires_at for mr in pending.member_roles] == [end]

    before = snapshot()
    past = (utcnow() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    late = owner.post("/settings/members/invite", data={
        "email": "late@example.test", "roles": [role(world, "viewer").id], "expires_at": past})
    assert late.status_code == 400 and "the expiry is in the past" in late.text
    other_dept = owner.post("/settings/members/invite", data={
        "email": "x@example.test", "roles": [role(world, "viewer").id], "department_id": 99999})
    assert other_dept.status_code == 400
    assert snapshot() == before


# -- counted confirmations ------------------------------------------------------------------


def owned_by(user: User) -> int:
    with rbac.system():
        return sum(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(
            model.owner_id == user.id)) or 0 for model in RECORD_MODELS)


def test_confirmations_say_what_happens_with_counts(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    member = world.members["member"]
    count = owned_by(world.users["member"])
    assert count > 0
    page = owner.get(f"/settings/members/{member.id}").text
    assert (f'data-rbac-confirm="Deactivate Member? They lose access to Acme Sales now; '
            f'their {count} records stay theirs."') in page
    assert f"Reassign their {count} records" in page
    target = world.users["member2"].id
    preview = owner.post(f"/settings/members/{member.id}/reassign",
                         data={"to_user_id": target, "step": "preview"})
    assert preview.status_code == 200
    assert f'data-rbac-confirm="Reassign {count} records from Member to Member2?"' in preview.text
    assert owned_by(world.users["member"]) == count  # the preview moved nothing


def test_a_member_page_offers_only_the_changes_the_viewer_may_make(world: SimpleNamespace,
                                                                   login: Any) -> None:
    """A Manager deactivates only the members assigned to them: another member's page (the
    Owner's too) offers no Deactivate and no Reassign they would be refused, and the count
    of a team member's records says it is the Manager's view of them."""
    manager = login(world.users["manager"], world.ws)
    member = world.members["member"]
    own = manager.get(f"/settings/members/{member.id}").text
    assert f"/settings/members/{member.id}/deactivate" in own
    assert "you can see" in own  # the Manager's count, not the member's total
    for key in ("owner", "member2"):
        other = world.members[key].id
        page = manager.get(f"/settings/members/{other}").text
        assert f"/settings/members/{other}/deactivate" not in page, key
        assert f"/settings/members/{other}/reassign" not in page, key
    assert manager.post(f"/settings/members/{world.members['member2'].id}/deactivate"
                        ).status_code == 403


# -- access review ------------------------------------------------------------------------------


def test_access_review_signs_off_deactivates_and_removes_roles(world: SimpleNamespace,
                                                               login: Any) -> None:
    with rbac.system():
        world.members["member"].last_seen_at = utcnow() - dt.timedelta(days=90)
        world.members["owner"].last_seen_at = utcnow()
        soon = utcnow() + dt.timedelta(days=3)
        temp = workspaces.assign_role(rbac, world.members["viewer"], role(world, "finance"),
                                      expires_at=soon)
        db.session.commit()
    owner = login(world.users["owner"], world.ws)
    page = owner.get("/settings/access-review").text
    never = page.split('id="review-never"', 1)[1].split("</ul>", 1)[0]
    inactive = page.split('id="review-inactive"', 1)[1].split("</ul>", 1)[0]
    assert "Member2" in never and "never signed in" in never
    assert "Member2" not in inactive and "<strong>Member</strong>" in inactive

    mid = world.members["member"].id
    signed = owner.post(f"/settings/access-review/members/{mid}/sign-off?inactive_days=60")
    assert signed.status_code == 302
    assert signed.headers["Location"].endswith("/settings/access-review?inactive_days=60")
    ev = audit_actions("member.signed_off")[-1]
    assert ev.detail["membership_id"] == mid and ev.target == "Member"
    assert ev.actor_membership_id == world.members["owner"].id
    assert "last signed off by Owner on" in owner.get("/settings/access-review").text
    before = snapshot()
    me = owner.post(f"/settings/access-review/members/{world.members['owner'].id}/sign-off")
    assert me.status_code == 403 and "your own access" in me.text

    removed = owner.post(f"/settings/access-review/assignments/{temp.id}/remove")
    assert removed.status_code == 302 and "finance" not in role_keys("viewer", world)
    assert owner.post(f"/settings/access-review/members/{mid}/deactivate").status_code == 302
    assert status_of("member", world) == "inactive"

    admin = login(world.users["admin"], world.ws)
    before = snapshot()
    refused = admin.post(f"/settings/access-review/members/{world.members['owner'].id}"
                         "/deactivate")
    assert refused.status_code == 403 and "Only an Owner" in refused.text
    assert snapshot() == before


def test_access_review_actions_refuse_other_workspaces_and_expired_forms(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    M, MR = rbac.models.Membership, rbac.models.MemberRole
    outsider = db.session.scalar(sa.select(M).where(M.workspace_id == world.ws2.id))
    their_role = db.session.scalar(sa.select(MR).where(MR.membership_id == outsider.id))
    before = snapshot()
    for url in (f"/settings/access-review/members/{outsider.id}/sign-off",
                f"/settings/access-review/members/{outsider.id}/deactivate",
                f"/settings/access-review/assignments/{their_role.id}/remove"):
        assert owner.post(url).status_code == 404, url
    viewer = login(world.users["viewer"], world.ws)
    mid = world.members["member"].id
    assert viewer.post(f"/settings/access-review/members/{mid}/sign-off").status_code == 403
    app.config["WTF_CSRF_ENABLED"] = True
    assert owner.post(f"/settings/access-review/members/{mid}/deactivate").status_code == 400
    assert snapshot() == before and audit_actions("member.signed_off") == []


# -- where /settings/ lands ---------------------------------------------------------------------


@pytest.mark.parametrize(("who", "lands"), [("owner", "/settings/roles"),
                                            ("manager", "/settings/members"),
                                            ("viewer", "/settings/profile"),
                                            ("member", "/settings/profile")])
def test_settings_root_lands_where_the_member_may_go(world: SimpleNamespace, login: Any,
                                                     who: str, lands: str) -> None:
    client = login(world.users[who], world.ws)
    response = client.get("/settings/")
    assert response.status_code == 302 and response.headers["Location"].endswith(lands)
    assert client.get(lands).status_code == 200


def test_the_profile_shows_the_members_roles_read_only(world: SimpleNamespace,
                                                       login: Any) -> None:
    """002: "Each user has a profile with ... Role assignment": the roles in force,
    the department's and the department itself, with no way to change them there."""
    page = login(world.users["member"], world.ws).get("/settings/profile").text
    card = page.split('id="profile-access"', 1)[1].split("</section>", 1)[0]
    assert "Member" in card and "Sales" in card
    assert "<select" not in card and "<input" not in card
