"""Fields of plift-nerfstudio."""
