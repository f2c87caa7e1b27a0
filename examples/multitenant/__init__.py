"""A multi-tenant project tracker: Flask-Security-Too sign-in, UUID user keys."""
