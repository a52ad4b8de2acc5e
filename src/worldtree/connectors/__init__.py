"""Connections to the places work runs: below both ``ops`` (facts, operations) and ``backends``.

A connector opens, pools and closes connections and translates the client library's errors;
it knows nothing about steps, graphs or inventories.
"""
