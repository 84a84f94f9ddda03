"""Scoring renders against ground truth: panoptic metrics under named protocols, rendering and scoring a run's test
views, diagnostics that tell geometry from segmentation failures, and the labels' own consensus (label majority)."""
