"""Helpers of the backend tests live in process_helpers.py (test modules import them from there)."""
