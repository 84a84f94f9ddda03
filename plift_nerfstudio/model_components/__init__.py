"""The model's machinery: how rays are marched, what space is skipped, which samples are shaded, and how the grids
grow during training (``model.py`` holds the config and nerfstudio's interface around them)."""
