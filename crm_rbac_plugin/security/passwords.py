"""The password rules: a minimum length and a minimum strength, per workspace.

Every place the plugin sets a password (accepting an invitation, changing it
on the profile page) passes it through :func:`require_password` first, and a
host does the same with :func:`check_password` wherever it sets one (sign-up,
reset, a CLI): the reasons come back in words, to show next to the field.

Strength is zxcvbn's score (0-4), which estimates guesses from common
passwords, dictionary words, names, keyboard patterns, repeats, dates and the
``user_inputs`` (the address and name of the account), so "password1234",
"aaaaaaaaaaaa" or the account's own address score low however long they are.
zxcvbn's cost grows with the length, and it refuses input longer than
:data:`SCORED_LENGTH`; only that prefix is scored (a longer password is at
least as strong as its prefix).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zxcvbn import zxcvbn

from ..errors import ValidationError
from .policy import PasswordRules

__all__ = ["SCORED_LENGTH", "check_password", "describe_rules", "require_password", "user_inputs_of"]

#: The longest prefix zxcvbn scores.
SCORED_LENGTH = 72


def check_password(password: str, *, user_inputs: Iterable[str] = (),
                   policy: PasswordRules | Any = None) -> list[str]:
    """Return why ``password`` is refused under ``policy``, in words; empty when it is accepted.

    ``policy`` is a :class:`~.policy.PasswordRules` or anything with
    ``password_min_length`` and ``password_min_score`` (a workspace's
    :class:`~.policy.Policy`); None means the defaults. ``user_inputs`` are
    words the password must not lean on (the account's address, name)::

        reasons = check_password(form.password.data, user_inputs=[user.email],
                                 policy=policy_for(rbac, workspace_id))
        if reasons:
            form.password.errors.extend(reasons)
    """
    rules = _rules(policy)
    if not isinstance(password, str) or not password:
        return [f"Use at least {rules.min_length} characters."]
    reasons = []
    if len(password) < rules.min_length:
        reasons.append(f"Use at least {rules.min_length} characters.")
    inputs = [word for word in _words(user_inputs) if word]
    result = zxcvbn(password[:SCORED_LENGTH], user_inputs=inputs)
    if result["score"] < rules.min_score:
        feedback = result.get("feedback") or {}
        hint = " ".join(part for part in [feedback.get("warning") or "",
                                          *(feedback.get("suggestions") or [])] if part)
        reasons.append("This password is too common or too easy to guess."
                       + (f" {hint}" if hint else ""))
    return reasons


def describe_rules(policy: PasswordRules | Any = None) -> str:
    """The rule :func:`check_password` applies, in words, for the help text under a
    password field: a person reads it before choosing, not after a refusal."""
    rules = _rules(policy)
    if rules.min_score > 0:
        return (f"At least {rules.min_length} characters, and not a common or easily "
                "guessed password: a few unrelated words make a good one.")
    return f"At least {rules.min_length} characters."


def require_password(password: Any, *, field: str, user_inputs: Iterable[str] = (),
                     policy: PasswordRules | Any = None) -> str:
    """Return ``password`` if :func:`check_password` accepts it; otherwise raise a
    ValidationError naming ``field`` with every reason."""
    reasons = check_password(password if isinstance(password, str) else "",
                             user_inputs=user_inputs, policy=policy)
    if reasons:
        raise ValidationError(" ".join(reasons), field=field)
    return str(password)


def user_inputs_of(user: Any, *extra: Any) -> list[str]:
    """The account's own words a password must not lean on: its address, its name,
    and ``extra`` (for example a name being set); :func:`check_password` also
    splits each into its parts."""
    values = (getattr(user, "email", None), getattr(user, "name", None), *extra)
    return [v for v in values if isinstance(v, str) and v]


def _rules(policy: Any) -> PasswordRules:
    if policy is None:
        return PasswordRules()
    if isinstance(policy, PasswordRules):
        return policy
    return PasswordRules(int(policy.password_min_length), int(policy.password_min_score))


def _words(inputs: Iterable[str]) -> list[str]:
    words = []
    for value in inputs:
        if isinstance(value, str):
            value = value.strip().lower()
            words += [value, value.partition("@")[0]]
            words += [part for part in value.lower().replace("@", " ").replace(".", " ").split()
                      if len(part) > 2]
    return words
