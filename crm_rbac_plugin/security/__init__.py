"""Account protection: security policies, password rules, sign-in throttling, rate limits.

- :mod:`.policy`: a workspace's security policy (its row or the defaults),
  and the validation of an edit;
- :mod:`.passwords`: the password rules (length, zxcvbn strength), applied
  wherever a password is set;
- :mod:`.throttle`: failed sign-ins counted per account and per IP in the
  database, with an exponentially growing wait;
- :mod:`.auth`: ``rbac.auth``, the API a host's sign-in view calls
  (``check``, ``failed``, ``succeeded``), with audit events and signals;
- :mod:`.limits`: Flask-Limiter's per-IP limit on the sign-in and invitation
  routes (``rbac.rate_limited``);
- :mod:`.totp`, :mod:`.mfa`, :mod:`.stepup`, :mod:`.enforce`: two-factor
  authentication (TOTP codes and recovery codes, enrolment and reset, who
  must use it and step-up, the ``before_request`` gate).
"""

from __future__ import annotations

from .auth import SignInGuard
from .limits import init_app, rate_limited
from .passwords import check_password, describe_rules, require_password, user_inputs_of
from .policy import (
    PasswordRules,
    Policy,
    password_rules_for_user,
    policy_for,
    save_policy,
    validate_policy,
)
from .throttle import Throttle

__all__ = ["PasswordRules", "Policy", "SignInGuard", "Throttle", "check_password", "describe_rules",
           "init_app", "password_rules_for_user", "policy_for", "rate_limited", "require_password",
           "save_policy", "user_inputs_of", "validate_policy"]
