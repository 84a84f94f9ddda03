"""Furnished rooms rendered with Blender Cycles (plift-realistic-scene): the realistic benchmark rooms."""
