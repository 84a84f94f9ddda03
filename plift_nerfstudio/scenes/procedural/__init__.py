"""Procedural rooms of boxes, rendered by ray casting in numpy (plift-synth): the demo scene and the tests' scenes."""
