"""Errors for bad user input: each names the file (or option) and what is wrong with it.

Every ``plift-*`` command prints such an error as one line and exits with code 2 (``cli.runner.run_cli``); so does
``ns-train`` for problems found while it sets up (``trainer.PanopticTrainer``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

BAD_INPUT_EXIT_CODE = 2


class UserFileError(ValueError):
    """A file the user gave (or that a command found through the user's options) that cannot be used."""

    def __init__(self, path: Union[str, Path], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CheckpointError(UserFileError):
    """A checkpoint (or run folder) that cannot be loaded."""


class LabelFileError(UserFileError):
    """A label, class-table, mapping, prediction, ground-truth or transforms file that cannot be used."""


def read_json_file(path: Path, what: str) -> Any:
    """Parse a JSON file; a missing or malformed file raises LabelFileError naming it and ``what`` it is."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LabelFileError(path, f"{what} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LabelFileError(path, f"{what} is not readable JSON ({err})") from None
