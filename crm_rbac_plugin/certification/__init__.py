"""Access reviews on a schedule, certification runs and the compliance report.

* :mod:`.schedule`: how often a workspace reviews its access, whether a
  permission change needs a reason, and ``flask rbac review remind``'s
  :func:`.schedule.remind` (the ``review_due`` signal, once per due period);
* :mod:`.runs`: certification runs, their items and decisions (a revoke goes
  through the role service);
* :mod:`.report`: a run's compliance report, as sections for the printable
  page and the CSV;
* :mod:`.commands`: the ``flask rbac review`` command group.

The reason of a permission change is set with
:func:`..context.change_reason` (or a request's ``reason`` field) and
enforced where the change's audit event is written (:mod:`..audit.reasons`).
"""

from __future__ import annotations

from ..context import change_reason
from .report import SECTIONS, Section
from .runs import complete_run, decide, run_in, runs_of, start_run
from .schedule import Schedule, remind, schedule_for

__all__ = ["SECTIONS", "Schedule", "Section", "change_reason", "complete_run", "decide",
           "remind", "run_in", "runs_of", "schedule_for", "start_run"]
