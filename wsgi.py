"""WSGI entry point: ``flask --app wsgi run`` or ``gunicorn wsgi:app``.

It needs a secret key (``FLASK_SECRET_KEY`` or ``instance/secret_key``) and,
unless the app is served over HTTPS, ``FLASK_CRM_HTTPS=false`` (see
``crm_app/security.py`` and the README's "Deployment" section).
"""

from crm_app import create_app

app = create_app()
