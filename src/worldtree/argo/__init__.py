"""Argo Workflows: export a compiled pipeline as a ``Workflow``/``CronWorkflow`` and run it on a cluster.

``tasks`` groups the graph's nodes into DAG tasks, ``depends`` turns ``when``/``if:`` into Argo
``depends`` expressions, ``script`` builds each task's shell script, ``manifest`` assembles the
manifest with Hera's typed models, and ``kube`` submits, watches and stops it through the
Kubernetes API. Nothing here runs a step: a cluster's Argo controller does.
"""
