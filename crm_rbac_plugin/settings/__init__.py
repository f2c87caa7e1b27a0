"""The role, member, plan and API-token settings pages (a blueprint).

``views`` holds the role, member, plan and token pages, ``team_views`` and
``sharing_views`` the team and sharing pages on the same blueprint, and
``forms`` their Flask-WTF forms. What they read is :mod:`..queries`, shared
with the JSON API, the oversight pages and the CLI.
"""
