"""The ``docker`` backend: steps in containers through the Docker Engine API (Docker or Podman).

``convert`` and ``compose`` are pure (request -> API bodies); ``client`` is the only module
that talks to the daemon; ``services`` brings compose projects up; ``backend`` ties them to
the :mod:`worldtree.backends.base` contract. Nothing is imported here, so the pure conversion
loads without aiodocker.
"""
