"""Example Conveyor task types (docs/task-types.md): ``checksum`` and ``word-count``."""
