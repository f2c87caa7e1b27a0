"""The CRM's pages: generic record views, the dashboard and "My access"."""

from __future__ import annotations

from .setup import init_app

__all__ = ["init_app"]
