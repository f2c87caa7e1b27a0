"""Quotas: seats per plan and record caps per role.

- **Seats** (:mod:`.seats`): a workspace on a plan with a limit in
  ``RBAC_PLAN_SEATS`` holds at most that many active plus pending members.
  An invitation (a pending member), a new active member and a reactivation
  each take a seat; a deactivated member frees theirs.
- **Record caps** (:mod:`.caps`): a role may say "at most 500 clients": a
  holder may then create a record of that resource only while the records
  they own stay within the cap. Roles stack, so the most permissive role
  decides: a member with another role that allows ``create`` on the
  resource without a cap is not capped, and between capped roles the
  highest cap applies. The Owner is never capped.

Both are enforced where rows are written, by one ``before_flush`` listener
(:mod:`.setup`), so the pages, the JSON API, the CLI, Flask-Admin, bulk code
and scripts meet the same limit without remembering a call. A refusal is
:class:`~..errors.QuotaExceeded`, a 409 naming the limit and its figures.

Concurrency: before counting, the listener writes the row the limit belongs
to (the workspace row for seats, the member's membership row for caps). On
PostgreSQL the UPDATE takes the row lock, so a concurrent transaction waits
and then counts afresh (READ COMMITTED sees the committed rows); on SQLite
it takes the database write lock. Two creates racing for the last seat
therefore cannot both win (``tests/test_quotas_race.py``).
"""

from __future__ import annotations

from .caps import CapView, batch_refusal, caps_of, member_cap, owned_count, set_cap
from .seats import SeatUsage, seat_limit, seat_usage

__all__ = ["CapView", "SeatUsage", "batch_refusal", "caps_of", "member_cap", "owned_count", "seat_limit",
           "seat_usage", "set_cap"]
