"""Shared command-line plumbing: parse options with tyro and turn expected errors into a clear message."""

from __future__ import annotations

import sys
from typing import Callable, Type, TypeVar

import tyro
from rich.console import Console
from rich.text import Text

from plift_nerfstudio.core.errors import BAD_INPUT_EXIT_CODE

T = TypeVar("T")

USER_ERRORS = (ValueError, FileExistsError, FileNotFoundError, ImportError)


def run_cli(main: Callable[[T], object], options: Type[T], description: str, prog: str) -> None:
    """Run ``main`` on options from the command line; a user error prints '<prog>: <message>' and exits 2."""
    opts = tyro.cli(options, description=description, prog=prog)
    try:
        main(opts)
    except USER_ERRORS as err:
        print_user_error(prog, err)
        sys.exit(BAD_INPUT_EXIT_CODE)


def print_user_error(prog: str, err: BaseException) -> None:
    """'<prog>: <message>' on stderr as one line (never wrapped, so paths stay whole; no markup read in it)."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(Text(f"{prog}: {err}", style="bold red"))
