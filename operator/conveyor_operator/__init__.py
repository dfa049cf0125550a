"""Conveyor's Kubernetes side: CRD models, kopf handlers, status building, the sandbox."""

__version__ = "0.1.0"
