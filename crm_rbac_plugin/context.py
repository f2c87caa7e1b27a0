"""Explicit access contexts: the system context and acting as a member.

Inside a request the current member comes from Flask-Login and the current
workspace. Everywhere else (CLI commands, jobs, tests) code must say whose
rights apply, or protected queries fail closed. A :class:`contextvars.ContextVar`
holds the override so it is correct per thread and per task.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from .policy import Access


class _System:
    """Marker of the system context (like Odoo's ``sudo``): no filtering."""

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Final = _System()

#: The explicit context in force, if any: SYSTEM, an Access, or None.
_override: contextvars.ContextVar[_System | Access | None] = contextvars.ContextVar(
    "rbac_override", default=None)


def current_override() -> _System | Access | None:
    return _override.get()


@contextmanager
def override(value: _System | Access | None) -> Iterator[None]:
    token = _override.set(value)
    try:
        yield
    finally:
        _override.reset(token)
