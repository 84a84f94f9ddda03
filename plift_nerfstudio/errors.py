"""Errors for bad user input: each names the file (or option) and what is wrong with it.

Every ``plift-*`` command prints such an error as one line and exits with code 2 (``cli_utils.run_cli``); so does
``ns-train`` for problems found while it sets up (``trainer.PanopticTrainer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

BAD_INPUT_EXIT_CODE = 2


class UserFileError(ValueError):
    """A file the user gave (or that a command found through the user's options) that cannot be used."""

    def __init__(self, path: Union[str, Path], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CheckpointError(UserFileError):
    """A checkpoint (or run folder) that cannot be loaded."""
