"""Background jobs and CLI commands act as a member, named by a handle or by --as.

A job outside a request fails closed with an error that says how to fix it;
a handle taken in a request lets the job act as that member, with the rights
the member holds when the job runs.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import click
import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import NoAccessContext
from crm_rbac_plugin.cli import as_member_option
from crm_rbac_plugin.context import MemberHandle


def visible_lead_names() -> list[str]:
    return sorted(lead.name for lead in db.session.scalars(sa.select(Lead)))


def in_a_worker(app: Flask, job: Any) -> Any:
    """Run ``job()`` in another thread with only an app context, as a job worker does."""
    results: list[Any] = []

    def run() -> None:
        with app.app_context():
            try:
                results.append(job())
            except Exception as exc:  # noqa: BLE001 - handed to the test thread
                results.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return results[0]


def test_a_query_outside_a_request_says_how_to_act(world: SimpleNamespace, app: Flask) -> None:
    caught = in_a_worker(app, visible_lead_names)
    assert isinstance(caught, NoAccessContext)
    message = str(caught)
    assert "rbac.as_member(handle)" in message and "rbac.member_handle()" in message
    assert "rbac.system()" in message and "as_member_option" in message


def test_a_handle_taken_in_a_request_runs_a_job_as_that_member(
        world: SimpleNamespace, login: Any, app: Flask) -> None:
    client = login(world.users["member"], world.ws)
    handles: list[str] = []

    @app.get("/queue-job")
    def queue_job() -> str:
        handles.append(str(rbac.member_handle()))
        return "queued"

    assert client.get("/queue-job").text == "queued"
    handle = handles[0]
    assert handle == f"{world.ws.id}:{world.members['member'].id}"

    def job() -> list[str]:
        with rbac.as_member(handle):
            return visible_lead_names()

    assert in_a_worker(app, job) == ["Lead of member", "Lead of unowned"]


def test_a_job_acts_with_the_rights_held_when_it_runs(world: SimpleNamespace) -> None:
    handle = rbac.member_handle(rbac.access_for(world.members["member"]))
    with rbac.system():
        world.members["member"].status = "deactivated"
        db.session.commit()
    with rbac.as_member(str(handle)):
        assert visible_lead_names() == []


def test_a_handle_naming_another_workspace_is_refused(world: SimpleNamespace) -> None:
    forged = MemberHandle(world.ws2.id, world.members["member"].id)
    with pytest.raises(LookupError):
        with rbac.as_member(str(forged)):
            pass
    with pytest.raises(ValueError, match="not a member handle"):
        MemberHandle.parse("12")
    with pytest.raises(ValueError, match="not a member handle"):
        MemberHandle.parse("a:b")


def test_a_cli_command_runs_as_the_member_named_by_as(world: SimpleNamespace, app: Flask) -> None:
    @app.cli.command("count-leads")
    @as_member_option
    def count_leads() -> None:
        click.echo(",".join(visible_lead_names()))

    runner = app.test_cli_runner()
    result = runner.invoke(args=["count-leads", "--as", "member@example.test",
                                 "--workspace", "acme"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Lead of member,Lead of unowned"
    refused = runner.invoke(args=["count-leads", "--as", "outsider@example.test",
                                  "--workspace", "acme"])
    assert refused.exit_code != 0 and "not a member of workspace 'acme'" in refused.output
    missing = runner.invoke(args=["count-leads"])
    assert missing.exit_code != 0 and "--as" in missing.output
