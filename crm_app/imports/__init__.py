"""CSV import of leads, clients and deals, checked row by row as the importer.

``crm_app.imports.setup.init_app`` mounts the pages; the checks and the
writing are ``crm_rbac_plugin.imports``'.
"""
