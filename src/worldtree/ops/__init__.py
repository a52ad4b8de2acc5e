"""Operations on hosts and what they need: the inventory, host facts, worldtree's own config.

Sits above ``compile`` and ``connectors`` and below ``backends`` (see ``tests/test_layers.py``).
"""
