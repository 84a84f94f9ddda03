"""Errors raised for bad label input: each names the file and what is wrong with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union


class LabelFileError(ValueError):
    """A label, class-table or transforms file that cannot be used, with the reason."""

    def __init__(self, path: Union[str, Path], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def read_json_file(path: Path, what: str) -> Any:
    """Parse a JSON file; a missing or malformed file raises LabelFileError naming it and ``what`` it is."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LabelFileError(path, f"{what} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LabelFileError(path, f"{what} is not readable JSON ({err})") from None
