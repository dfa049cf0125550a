"""``python -m conveyor_engine`` is ``conveyor-engine``."""

from .cli import main

main()
