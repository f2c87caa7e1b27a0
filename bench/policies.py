"""Figure 3 with every account-protection policy on (``request[scope][page]["policies"]``).

The guarded list and detail pages of figure 3 are measured again after the
workspace turns on MFA for everyone, a session cap, an IP allowlist and
shorter idle timeouts, for a member who passes them all: each request then
runs every check (MFA state, session record, allowlist) and is refused by
none. The baseline is the same hand-filtered page as figure 3*, which skips
the plugin's hooks, so the ratio is the whole price of the plugin with its
policies on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from time import time
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.security import save_policy, sessions
from crm_rbac_plugin.security.stepup import SESSION_KEY as MFA_CHECK_KEY

from .figures import Effort, _stats, request_pages, signed_in
from .timing import compare, ratio
from .world import ALL, OWN, Member, World

#: Figure 3's "all policies on" variant: every account-protection rule the
#: workspace can set, for a member who passes them all (enrolled and checked,
#: inside the allowlist, under the session cap), so that each request runs
#: every check and is refused by none.
ALL_POLICIES = {"mfa": "everyone", "step_up_minutes": 60, "max_sessions": 100,
                "ip_allowlist": "127.0.0.0/8\n::1/128\n10.0.0.0/8\n192.168.0.0/16",
                "idle_minutes_privileged": 60, "idle_minutes_member": 480}


@contextmanager
def policies_on(app: Flask, members: list[Member]) -> Iterator[None]:
    """Save :data:`ALL_POLICIES` for ``members``' workspaces and enrol them in MFA;
    remove both afterwards, so that later figures measure the defaults."""
    m = rbac.models
    workspaces = sorted({member.workspace_id for member in members})
    users = sorted({member.user_id for member in members})
    with app.app_context():
        for ws in workspaces:
            save_policy(rbac, ws, ALL_POLICIES)
        db.session.add_all(m.MfaCredential(user_id=uid, secret="JBSWY3DPEHPK3PXP" * 2,
                                           confirmed_at=sa.func.now()) for uid in users)
        db.session.commit()
    try:
        yield
    finally:
        with app.app_context():
            for model, column, keys in ((m.SecurityPolicy, "workspace_id", workspaces),
                                        (m.MfaCredential, "user_id", users),
                                        (m.AuthSession, "user_id", users)):
                db.session.execute(sa.delete(model).where(getattr(model, column).in_(keys)))
            db.session.commit()


def with_policies(app: Flask, world: World, effort: Effort, out: dict[str, Any]) -> None:
    """Figure 3 again with :data:`ALL_POLICIES` on: the plugin page against the same
    hand-filtered page, which (like every baseline view) skips the plugin's hooks."""
    members = [world.members[scope] for scope in (OWN, ALL)]
    with policies_on(app, members):
        for scope, member in zip((OWN, ALL), members, strict=True):
            client = signed_in(app, member)
            pages = request_pages(app, member, scope)
            # The first request adopts a server session; the MFA check is bound to it.
            client.get(pages["list"]["plugin"])
            with client.session_transaction() as sess:
                sid = sess[app.config["RBAC_SESSION_ID_KEY"]]
                sess[MFA_CHECK_KEY] = {"user": str(member.user_id), "at": int(time()),
                                       "sid": sessions.sid_hash(sid)}
            for page, urls in pages.items():
                response = client.get(urls["plugin"])
                if response.status_code != 200:
                    raise RuntimeError(f"with every policy on, {urls['plugin']} answered "
                                       f"{response.status_code}")
                candidates = {name: (lambda u=urls[name]: client.get(u))
                              for name in ("plugin", "handwritten")}
                stats = compare(candidates, warmup=effort.warmup,
                                repeat=effort.requests_repeat, budget_s=effort.budget_s,
                                equal_batches=True)
                out[scope][page]["policies"] = {
                    "stats": _stats(stats),
                    "plugin_over_handwritten": ratio(stats["plugin"], stats["handwritten"])}


