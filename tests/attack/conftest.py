"""The attack tests' fixture lives in attack_helpers.py (an importable, unique name)."""

from attack_helpers import cli  # noqa: F401  (a fixture)
