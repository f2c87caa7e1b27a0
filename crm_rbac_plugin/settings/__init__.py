"""The role, member, plan and API-token settings pages (a blueprint).

``views`` holds the pages, ``forms`` their Flask-WTF forms and ``support``
the read helpers (and two small writes) they share with the JSON API.
"""
