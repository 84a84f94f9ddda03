"""Scene editing (paper Sec. 4.1.2): edit lists, the regions of 3D instances, and rendering an edited field."""
