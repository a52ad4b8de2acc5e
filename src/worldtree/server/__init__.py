"""``worldtree server``: the REST API, live log streams and the in-process executors.

An interface layer (a leaf, like ``cli``): it translates HTTP to :mod:`worldtree.app.service`
calls and starts :class:`worldtree.app.executor.Executor` threads; it holds no logic of its own.
"""
