"""What every ``batchyard`` command says the same way: a mistake is one ``error:`` line on
standard error and an exit status, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Status 2: the command line or its input is wrong; 1: it was right but did not work."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def check_writable(path: Path, option: str) -> None:
    """Refuse, before hours of work, an output that could not be written at the end."""
    if path.is_dir():
        fail(f"{option} {path} is a directory")
    if not path.parent.is_dir():
        fail(f"{option} {path}: the directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        fail(f"{option} {path}: the directory {path.parent} is not writable")
