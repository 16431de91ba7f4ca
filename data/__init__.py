"""Multi-view datasets, installed as ``vggt3d.data`` (filled by the data issue)."""
