"""Shared command-line plumbing: parse options with tyro and turn expected errors into a clear message."""

from __future__ import annotations

import sys
from typing import Callable, Type, TypeVar

import tyro
from rich.console import Console

T = TypeVar("T")

USER_ERRORS = (ValueError, FileExistsError, FileNotFoundError, ImportError)


def run_cli(main: Callable[[T], object], options: Type[T], description: str, prog: str) -> None:
    """Run ``main`` on options from the command line; a user error prints '<prog>: <message>' and exits 2."""
    opts = tyro.cli(options, description=description, prog=prog)
    try:
        main(opts)
    except USER_ERRORS as err:
        Console(stderr=True).print(f"[bold red]{prog}: {err}")
        sys.exit(2)
