"""Benchmarks of crm_rbac_plugin: ``python -m bench`` (see docs/benchmarks.md).

Not part of the test suite: nothing here is collected by pytest.
"""
