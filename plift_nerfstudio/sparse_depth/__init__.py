"""Sparse depth from triangulated feature points: COLMAP with the dataset's own poses, the points file the
datamanager reads, and the rays that carry a point's distance."""
