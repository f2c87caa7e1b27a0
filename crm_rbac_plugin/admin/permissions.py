"""The permission attributes of :class:`~.views.RBACModelView`: the host narrows, never widens.

Flask-Admin reads ``can_create``, ``can_edit``, ``can_delete``,
``can_export`` and ``can_view_details`` from the view, and its idiom is a
class attribute (``can_export = True``). Here each one is a property: the
host's flag (``_host_<name>``) AND the plugin's decision for the member.
A subclass's class attribute or property, and an assignment on a view,
become the host's flag; ``False`` in a class body stays a plain ``False``,
which no subclass and no decision widens.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PERMISSION_FLAGS", "HostPermissions"]

#: Flask-Admin's permission attributes and the plugin action each one asks for.
PERMISSION_FLAGS: dict[str, str] = {"can_create": "create", "can_edit": "edit",
                                    "can_delete": "delete", "can_export": "export",
                                    "can_view_details": "view"}


def _permission(flag: str, action: str) -> property:
    """The property behind ``flag``: the host's flag AND the plugin's decision on ``action``.

    The host's flag lives in ``_host_<flag>`` (a bool, or a property the host
    wrote), so a host's value can only narrow what the plugin allows.
    """
    host = f"_host_{flag}"

    def get(self: HostPermissions) -> bool:
        return bool(getattr(self, host)) and self._allowed(action)
    get.__doc__ = f"Whether the member may {action} here (the host's ``{flag}`` AND the plugin)."
    return property(get)


_PERMISSIONS: dict[str, property] = {flag: _permission(flag, action)
                                     for flag, action in PERMISSION_FLAGS.items()}


class HostPermissions:
    """Mixin of the permission properties; the view supplies :meth:`_allowed`."""

    _host_can_create: Any = True
    _host_can_edit: Any = True
    _host_can_delete: Any = True
    _host_can_export: Any = True
    _host_can_view_details: Any = True
    can_create = _PERMISSIONS["can_create"]
    can_edit = _PERMISSIONS["can_edit"]
    can_delete = _PERMISSIONS["can_delete"]
    can_export = _PERMISSIONS["can_export"]
    can_view_details = _PERMISSIONS["can_view_details"]

    def _allowed(self, action: str, record: Any = None) -> bool:
        """Whether the signed-in member may do ``action`` here (the view decides)."""
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Turn a subclass's permission attributes into host flags under the plugin's properties.

        Flask-Admin's idiom (``can_export = True`` in the class body) would
        otherwise replace the property and switch the plugin's check off.
        ``False`` stays a plain ``False``: no decision can widen it, and it
        holds for the subclasses too.
        """
        super().__init_subclass__(**kwargs)
        for flag in PERMISSION_FLAGS:
            if flag not in cls.__dict__ or cls.__dict__[flag] is _PERMISSIONS[flag]:
                continue
            value = cls.__dict__[flag]
            inherited = next((base.__dict__[flag] for base in cls.__mro__[1:]
                              if flag in base.__dict__), True)
            if inherited is False or not (isinstance(value, property) or value):
                setattr(cls, flag, False)
                continue
            setattr(cls, f"_host_{flag}", value if isinstance(value, property) else True)
            setattr(cls, flag, _PERMISSIONS[flag])

    def __setattr__(self, name: str, value: Any) -> None:
        """Read ``view.can_<action> = value`` as the host's flag: it narrows, never widens."""
        if name in PERMISSION_FLAGS:
            name, value = f"_host_{name}", bool(value)
        super().__setattr__(name, value)
