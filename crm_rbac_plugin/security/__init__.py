"""Account protection: the workspace security policies (MFA, sessions, passwords, sign-in throttling)."""
