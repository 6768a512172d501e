"""``python -m densharp`` runs the command-line interface."""

from densharp.cli import console_main

console_main()
