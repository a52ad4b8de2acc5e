"""The operation tests' fixtures and hooks live in ops_helpers.py (an importable, unique name)."""

from ops_helpers import farm, pytest_collection_modifyitems, user_root  # noqa: F401  (fixtures and a hook)
