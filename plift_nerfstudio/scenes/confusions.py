"""Which classes a 2D panoptic network takes for which: the confusion tables of the two label noise models.

``CONFUSABLE`` (per class) drives the procedural scenes' noise (``procedural/noise.py``: a whole segment shown as a
confusable class, drawn anew in every view); ``LOOK_ALIKES`` (per object kind: a layout object's name or its class,
most likely first) drives the realistic rooms' (``realistic/label_noise.py``: persistent and per-view confusions).
They differ where the scenes differ (the realistic rooms hold rugs, books, pictures, curtains, mugs and kettles) and
in a few classes' second choice; each table is part of its generator's output, so changing one changes every scene
and number made with it.
"""

from __future__ import annotations

from typing import Dict, Tuple

CONFUSABLE: Dict[str, Tuple[str, ...]] = {
    "chair": ("sofa", "otherprop"),
    "sofa": ("chair", "bed"),
    "bed": ("sofa", "otherprop"),
    "cabinet": ("shelves", "counter", "refrigerator"),
    "shelves": ("cabinet", "otherprop"),
    "table": ("counter", "otherprop"),
    "refrigerator": ("cabinet", "door"),
    "television": ("window", "otherprop"),
    "door": ("wall", "cabinet"),
    "window": ("curtain", "television"),
    "lamp": ("otherprop",),
    "bag": ("otherprop",),
    "wall": ("curtain", "door"),
    "floor": ("otherprop",),
    "ceiling": ("wall",),
}
"""Classes a 2D network tends to mistake for each other (whole-segment confusions), per class."""

LOOK_ALIKES: Dict[str, Tuple[str, ...]] = {
    "rug": ("floor",),
    "book": ("shelves",),
    "picture": ("television", "window", "wall"),
    "mug": ("otherprop",),
    "kettle": ("sink", "otherprop"),
    "curtain": ("window", "wall"),
    "window": ("curtain", "wall"),
    "door": ("wall", "cabinet"),
    "cabinet": ("counter", "shelves", "refrigerator"),
    "counter": ("table", "cabinet"),
    "shelves": ("cabinet",),
    "table": ("counter", "cabinet"),
    "chair": ("sofa", "table"),
    "sofa": ("chair", "bed"),
    "bed": ("sofa",),
    "bag": ("otherprop", "chair"),
    "lamp": ("otherprop",),
    "television": ("window", "cabinet"),
    "refrigerator": ("cabinet", "door"),
    "sink": ("counter",),
    "wall": ("ceiling", "door"),
    "floor": ("otherprop",),
    "ceiling": ("wall",),
}
"""Look-alikes per object kind (layout object name or class), most likely first."""
