"""Errors raised for bad label input: each names the file and what is wrong with it."""

from __future__ import annotations

from pathlib import Path
from typing import Union


class LabelFileError(ValueError):
    """A label, class-table or transforms file that cannot be used, with the reason."""

    def __init__(self, path: Union[str, Path], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
