#!/usr/bin/env python
"""Editing benchmark: delete, duplicate and move thing objects of the demo scene (or of a shipped realistic room) and The benchmark is ``plift_nerfstudio/bench/editing.py``; ``--help`` lists its options."""

import tyro

from plift_nerfstudio.bench import editing

if __name__ == "__main__":
    editing.main(tyro.cli(editing.EditingOptions, description=editing.__doc__))
