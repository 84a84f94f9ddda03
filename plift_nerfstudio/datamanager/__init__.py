"""DataManagers of plift-nerfstudio."""
