"""The JSON API (a blueprint) and its OpenAPI 3.1 description.

``views`` holds the endpoints, ``openapi`` the hand-written description
served at ``<prefix>/openapi.json``.
"""
