"""A single-tenant help desk: Flask-Login, integer user keys."""
