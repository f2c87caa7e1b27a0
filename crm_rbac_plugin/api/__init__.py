"""The JSON API (a blueprint) and its OpenAPI 3.1 description.

``views`` mounts the blueprint, authenticates and answers errors;
``blueprint`` holds what every endpoint starts with; ``roles``, ``members``,
``sharing`` and ``records`` hold the endpoints; ``openapi`` the hand-written
description served at ``<prefix>/openapi.json``.
"""
