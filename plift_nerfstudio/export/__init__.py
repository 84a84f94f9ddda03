"""Taking the segmented scene out: labelled point clouds, per-object meshes and their manifest (``plift-export``)."""
