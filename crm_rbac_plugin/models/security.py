"""The account-protection tables: security policies, MFA, sessions, sign-in throttling.

Rows keyed by a user (MFA credential, recovery codes, sessions) belong to the
account, not to a workspace: one person signs in once, whatever workspaces
they belong to, so these tables carry the host's user key and no workspace.
The throttle counts belong to neither: they are keyed by a hash of the typed
address or by the client's IP, so that an unknown account is counted exactly
like a known one and the table never reveals which addresses exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import fk, ix, pk, uq, user_key_column, utcnow

#: Who must use MFA in a workspace: ``nobody``, ``privileged`` members, ``everyone``.
MFA_POLICIES: tuple[str, ...] = ("nobody", "privileged", "everyone")
#: ``allowed_devices`` of a policy that allows every device type, as stored.
ALL_DEVICES = "desktop,mobile,tablet"


def define_security_models(db: Any, user_model: type, Workspace: Any) -> tuple[Any, ...]:
    """Create the account-protection tables on ``db.Model``.

    Returns ``(SecurityPolicy, MfaCredential, RecoveryCode, AuthSession,
    SignInThrottle)``, the order of :class:`.base.Models`' last fields.
    """
    return (define_policy_model(db, Workspace), *define_mfa_models(db, user_model),
            define_session_model(db, user_model), define_throttle_model(db))


def define_policy_model(db: Any, Workspace: Any) -> Any:
    """Create ``SecurityPolicy``, one workspace's account-protection settings."""

    class SecurityPolicy(db.Model):  # type: ignore[name-defined,misc]
        """A workspace's MFA, session, IP, device and password rules.

        A workspace without a row has the column defaults (see
        :func:`crm_rbac_plugin.security.policy.policy_for`): the row is
        written only when an Owner first saves the Security page.
        """

        __tablename__ = "rbac_security_policy"
        __table_args__ = (pk("rbac_security_policy", "id"), uq("rbac_security_policy", "workspace_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_security_policy.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        mfa: Mapped[str] = mapped_column(sa.String(20), default="nobody")
        step_up_minutes: Mapped[int] = mapped_column(default=15)
        idle_minutes_privileged: Mapped[int] = mapped_column(default=30)
        absolute_minutes_privileged: Mapped[int] = mapped_column(default=720)
        idle_minutes_member: Mapped[int] = mapped_column(default=480)
        absolute_minutes_member: Mapped[int] = mapped_column(default=10080)
        max_sessions: Mapped[int | None] = mapped_column()
        #: One CIDR per line; empty means every address is allowed.
        ip_allowlist: Mapped[str] = mapped_column(sa.Text, default="")
        password_min_length: Mapped[int] = mapped_column(default=12)
        #: The lowest zxcvbn score (0-4) a new password must reach.
        password_min_score: Mapped[int] = mapped_column(default=3)
        #: The device types that may use the workspace, joined by commas (see
        #: :mod:`crm_rbac_plugin.security.devices`); the default allows every type.
        allowed_devices: Mapped[str] = mapped_column(sa.String(40), default=ALL_DEVICES,
                                                     server_default=ALL_DEVICES)
        updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
        updated_by_membership_id: Mapped[int | None] = mapped_column()

        workspace = relationship(Workspace)

        def __repr__(self) -> str:
            return f"<SecurityPolicy ws={self.workspace_id} mfa={self.mfa!r}>"

    return SecurityPolicy


def define_mfa_models(db: Any, user_model: type) -> tuple[Any, Any]:
    """Create ``MfaCredential`` (a user's TOTP secret) and ``RecoveryCode``."""

    class MfaCredential(db.Model):  # type: ignore[name-defined,misc]
        """A user's TOTP secret; enrolled once ``confirmed_at`` is set.

        ``last_step`` is the last accepted TOTP time step: a code of that step
        or an earlier one is refused, so a code cannot be replayed within its
        window.
        """

        __tablename__ = "rbac_mfa_credential"
        __table_args__ = (pk("rbac_mfa_credential", "id"), uq("rbac_mfa_credential", "user_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[Any] = user_key_column(user_model, "rbac_mfa_credential.user_id",
                                               ondelete="CASCADE")
        secret: Mapped[str] = mapped_column(sa.String(64))
        confirmed_at: Mapped[dt.datetime | None] = mapped_column()
        last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    class RecoveryCode(db.Model):  # type: ignore[name-defined,misc]
        """One single-use recovery code; only its hash is stored."""

        __tablename__ = "rbac_recovery_code"
        __table_args__ = (pk("rbac_recovery_code", "id"), ix("rbac_recovery_code", "user_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[Any] = user_key_column(user_model, "rbac_recovery_code.user_id",
                                               ondelete="CASCADE")
        code_hash: Mapped[str] = mapped_column(sa.String(128))
        used_at: Mapped[dt.datetime | None] = mapped_column()

    return MfaCredential, RecoveryCode


def define_session_model(db: Any, user_model: type) -> Any:
    """Create ``AuthSession``, one server-side record per sign-in."""

    class AuthSession(db.Model):  # type: ignore[name-defined,misc]
        """A signed-in session: the cookie carries an id whose SHA-256 is ``sid_hash``.

        Revoking the row ends the session on its next request, wherever the
        cookie is.
        """

        __tablename__ = "rbac_session"
        __table_args__ = (pk("rbac_session", "id"), uq("rbac_session", "sid_hash"),
                          ix("rbac_session", "user_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[Any] = user_key_column(user_model, "rbac_session.user_id", ondelete="CASCADE")
        sid_hash: Mapped[str] = mapped_column(sa.String(64))
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        ip: Mapped[str] = mapped_column(sa.String(64), default="")
        user_agent: Mapped[str] = mapped_column(sa.String(300), default="")
        revoked_at: Mapped[dt.datetime | None] = mapped_column()
        #: The last MFA check in this session, for step-up.
        mfa_at: Mapped[dt.datetime | None] = mapped_column()

    return AuthSession


def define_throttle_model(db: Any) -> Any:
    """Create ``SignInThrottle``, the failed sign-in counts per account and per IP."""

    class SignInThrottle(db.Model):  # type: ignore[name-defined,misc]
        """Failed sign-ins for one key: ``account:<sha256 of the address>`` or ``ip:<address>``.

        Kept in the database so that every worker reads and raises the same
        count (see :mod:`crm_rbac_plugin.security.throttle`).
        """

        __tablename__ = "rbac_sign_in_throttle"
        __table_args__ = (pk("rbac_sign_in_throttle", "id"), uq("rbac_sign_in_throttle", "key"))
        id: Mapped[int] = mapped_column(primary_key=True)
        key: Mapped[str] = mapped_column(sa.String(128))
        failures: Mapped[int] = mapped_column(default=0)
        first_failure_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        last_failure_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        blocked_until: Mapped[dt.datetime | None] = mapped_column()

    return SignInThrottle
