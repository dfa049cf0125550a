"""Conveyor's engine: workflows compiled, dispatched through Redis Streams, recorded in PostgreSQL.

Nothing here knows about Kubernetes; the operator (``conveyor_operator``) builds on it.
"""

__version__ = "0.1.0"
