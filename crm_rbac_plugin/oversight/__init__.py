"""Oversight of access: audit pages, explain, who-could, view-as and access review."""
