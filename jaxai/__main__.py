"""`python -m jaxai ...` is the `jaxai` command."""

from jaxai.cli import run

run()
