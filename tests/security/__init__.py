"""The attack battery: IDOR, write, CSRF, escalation, session, concurrency and bad-input sweeps."""
