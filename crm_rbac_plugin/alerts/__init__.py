"""Alerts: anomaly rules evaluated as audit events are written."""
