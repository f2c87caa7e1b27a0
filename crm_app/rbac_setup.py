"""The demo's RBAC extension and the resources it protects."""

from __future__ import annotations

from crm_rbac_plugin import RBAC

from .extensions import db
from .models import Client, Deal, Lead, Note, Task, User

rbac = RBAC(db=db, user_model=User)

#: A custom action on every CRM resource: operations on many records at once
#: (bulk delete). A role may be denied it while keeping per-record deletes.
BULK = ("bulk",)
#: Leads, deals and clients also take ``import`` (CSV import, crm_app.imports):
#: many creates at once, granted apart from ``create`` so that a role may enter
#: records one by one without loading a file of them.
IMPORTABLE = ("bulk", "import")
rbac.register_resource("leads", Lead, module="sales", label="Leads", actions=IMPORTABLE)
rbac.register_resource("deals", Deal, module="sales", label="Deals", actions=IMPORTABLE)
rbac.register_resource("clients", Client, module="clients", label="Clients",
                       actions=IMPORTABLE)
rbac.register_resource("notes", Note, module="clients", label="Notes", actions=BULK,
                       parent=("clients", "client_id"))
rbac.register_resource("tasks", Task, module="work", label="Tasks", actions=BULK,
                       parent=("clients", "client_id"))
