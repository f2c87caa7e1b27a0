"""The settings pages: roles, members, team, sharing, plan and API tokens (a blueprint).

``blueprint`` holds the blueprint and what every page uses (committing a
change or showing its refusal); ``views`` mounts it (``register``) and holds
the member access, plan and token pages; ``role_views``, ``team_views`` and
``sharing_views`` the role, team and sharing pages; ``forms`` the Flask-WTF
forms. What they read is :mod:`..queries`, shared with the JSON API, the
oversight pages and the CLI; their layout and tabs are :mod:`..pages`.
"""
