"""Deprecation warnings of the libraries this plugin runs on, which a user can do nothing about, kept out of the log.

Each filter names the warning's message and the module that raises it (nerfstudio 1.1.5 under torch 2.14): any other
warning, and these same messages raised elsewhere, still show. The package installs them on import
(``plift_nerfstudio/__init__.py``); the ones nerfstudio raises while it imports its own models, before a ``ns-*``
command imports this plugin, are in :data:`BEFORE_PLUGIN_IMPORT` for ``PYTHONWARNINGS`` (``scripts/demo.sh``).
"""

from __future__ import annotations

import warnings
from typing import Tuple

THIRD_PARTY_DEPRECATIONS: Tuple[Tuple[str, type, str], ...] = (
    # (message prefix, category, module that raises it)
    ("Using a non-tuple sequence for multidimensional indexing", UserWarning, "nerfstudio.cameras.cameras"),
    ("`torch.cuda.amp.GradScaler(args...)` is deprecated", FutureWarning, "nerfstudio.engine.trainer"),
    ("`torch.cuda.amp.custom_fwd(args...)` is deprecated", FutureWarning, "nerfstudio.field_components.activations"),
    ("`torch.cuda.amp.custom_bwd(args...)` is deprecated", FutureWarning, "nerfstudio.field_components.activations"),
    ("`torch.jit.script` is deprecated", FutureWarning, "torch.jit._script"),
    ("Importing `spectral_angle_mapper` from `torchmetrics.functional` was deprecated", FutureWarning,
     "torchmetrics.utilities.prints"),
)

BEFORE_PLUGIN_IMPORT = ("`torch.cuda.amp.custom_fwd(args...)` is deprecated", "`torch.cuda.amp.custom_bwd(args...)` is deprecated",
                        "`torch.jit.script` is deprecated")
"""The messages nerfstudio's ``ns-*`` commands raise before they import this plugin."""


def quiet_third_party_deprecations() -> None:
    """Ignore exactly the warnings of :data:`THIRD_PARTY_DEPRECATIONS`, where they are raised."""
    import re

    for message, category, module in THIRD_PARTY_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=re.escape(message), category=category, module=re.escape(module) + r"\Z")


def pythonwarnings() -> str:
    """The ``PYTHONWARNINGS`` value that ignores the messages of :data:`BEFORE_PLUGIN_IMPORT` where they are raised."""
    return ",".join(f"ignore:{message}:{category.__name__}:{module}"
                    for message, category, module in THIRD_PARTY_DEPRECATIONS if message in BEFORE_PLUGIN_IMPORT)
