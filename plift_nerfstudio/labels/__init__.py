"""The label data contract: class table, per-frame label files, loading and validation."""
