"""Form checks of Flask-Admin panels that the model's columns declare (:func:`column_checks`).

The panels refuse what the host's own forms refuse: a value off a column's
list of choices, a blank required text. The host declares the rule once, on
the column, and its forms and the panels read the same declaration.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from wtforms.validators import AnyOf, DataRequired

__all__ = ["column_checks"]


def column_checks(model: type, form_args: dict[str, Any] | None) -> dict[str, Any] | None:
    """``form_args`` with the checks the model's columns declare, added to the host's own.

    Flask-Admin renders a text column as a free text box and requires only
    that a non-nullable column without a default is sent, so it takes a
    blank name or any word where the app's forms offer a list. So:

    * a column that names its values (``info={"choices": ...}``) takes one of
      them, or the empty text when that is the column's default (the forms'
      "none" entry);
    * a non-nullable text column without a default takes text that is not
      blank once stripped (WTForms' ``DataRequired``, as the forms use).
    """
    out = dict(form_args or {})
    for column in sa.inspect(model).columns:
        added = _declared_checks(column)
        if added:
            args = dict(out.get(column.key) or {})
            args["validators"] = [*args.get("validators", ()), *added]
            out[column.key] = args
    return out or form_args


def _declared_checks(column: Any) -> list[Any]:
    """The validators of :func:`column_checks` for one column."""
    default = getattr(column.default, "arg", None) if column.default is not None else None
    choices = tuple(column.info.get("choices") or ())
    if choices:
        allowed = ("", *choices) if default == "" else choices
        return [AnyOf(allowed, message=f"Choose one of {', '.join(choices)}.")]
    if (isinstance(column.type, sa.String) and not column.nullable and column.default is None
            and column.server_default is None and not column.primary_key):
        return [DataRequired()]
    return []
