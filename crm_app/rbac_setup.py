"""The demo's RBAC extension and the resources it protects."""

from __future__ import annotations

from crm_rbac_plugin import RBAC

from .extensions import db
from .models import Client, Deal, Lead, Note, Task, User

rbac = RBAC(db=db, user_model=User)
rbac.register_resource("leads", Lead, module="sales", label="Leads")
rbac.register_resource("deals", Deal, module="sales", label="Deals")
rbac.register_resource("clients", Client, module="clients", label="Clients")
rbac.register_resource("notes", Note, module="clients", label="Notes",
                       parent=("clients", "client_id"))
rbac.register_resource("tasks", Task, module="work", label="Tasks",
                       parent=("clients", "client_id"))
