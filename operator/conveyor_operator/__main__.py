"""``python -m conveyor_operator`` is ``conveyor-operator``."""

from .cli import main

main()
