"""Host apps written before adopting the plugin, with their adoption lines marked.

Each example is a plain Flask app; the lines a host adds to adopt the plugin
sit between ``# --- rbac adoption: begin ---`` and ``# --- rbac adoption: end ---``
so that they can be counted (``tests/test_examples.py``) and quoted verbatim by
``docs/adopting.md``. A ``# adoption:`` comment names what a host writes today
that a plugin feature in progress removes.
"""
