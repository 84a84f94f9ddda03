"""What the datamanager hands the model in nerfstudio's ``metadata``: the dataset's class table and its frame."""

CLASS_TABLE_METADATA_KEY = "panoptic_class_table"
"""A :class:`~plift_nerfstudio.labels.class_table.ClassTable`: the classes of the labels (names, thing or stuff)."""
DATASET_FRAME_METADATA_KEY = "panoptic_dataset_frame"
"""A :class:`~plift_nerfstudio.editing.dataset_frame.DatasetFrame`: how nerfstudio's dataparser moved and scaled the
poses of transforms.json (edit lists and exports use the dataset's frame)."""
