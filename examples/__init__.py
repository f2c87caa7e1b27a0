"""Host apps written before adopting the plugin, with their adoption lines marked.

Each example is a plain Flask app; the lines a host adds to adopt the plugin
sit between ``# --- rbac adoption: begin ---`` and ``# --- rbac adoption: end ---``
(``{# ... #}`` in templates) so that they can be counted against the adoption
targets (``tests/test_examples.py``) and quoted verbatim by
``docs/adopting.md``. A ``# adoption:`` comment names a cost of adoption that
no plugin feature removes yet.
"""
