"""Approval workflows for sensitive operations."""
