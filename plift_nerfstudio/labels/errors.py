"""Errors raised for bad label input: each names the file and what is wrong with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plift_nerfstudio.errors import UserFileError


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
