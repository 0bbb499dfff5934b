"""`python -m ecs_ship` runs the CLI (what the GitHub Action calls)."""

from .cli import entry

entry()
