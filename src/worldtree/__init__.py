"""worldtree: declarative pipelines and deployments, one execution graph, many places to run it.

The library is the product; ``worldtree.cli`` is one client of it. Import what you need from
the submodules; this top level stays light so that ``worldtree run`` starts fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
