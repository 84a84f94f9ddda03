"""Scenes the project makes itself, as labelled nerfstudio datasets with ground truth: procedural rooms of boxes
(``procedural/``, plift-synth) and furnished rooms rendered with Blender (``realistic/``, plift-realistic-scene),
written by one dataset writer into folders replaced only when they are provably a generator's own."""
