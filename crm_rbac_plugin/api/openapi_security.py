"""The fields of the security policy as the OpenAPI description shows them.

:mod:`.openapi` describes ``GET``/``PATCH /security-policy`` with them. The
ranges and choices are the service's own (``security.policy.LIMITS``,
``models.MFA_POLICIES``, ``security.devices.DEVICE_TYPES``), so the
description cannot drift from what the service accepts.
"""

from __future__ import annotations

from typing import Any

from ..models import MFA_POLICIES
from ..security.devices import DEVICE_TYPES
from ..security.policy import LIMITS

#: The fields of a workspace's security policy (``PATCH /security-policy`` takes any of them).
SECURITY_POLICY_FIELDS: dict[str, Any] = {
    "mfa": {"type": "string", "enum": list(MFA_POLICIES)},
    **{name: {"type": ["integer", "null"] if name == "max_sessions" else "integer",
              "minimum": low, "maximum": high} for name, (low, high) in LIMITS.items()},
    "ip_allowlist": {"type": "string", "description": "One CIDR per line; empty: any address."},
    "allowed_devices": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"type": "string", "enum": list(DEVICE_TYPES)},
                        "description": "The device types whose browser sessions may use the "
                                       "workspace; API tokens are not checked."},
}
