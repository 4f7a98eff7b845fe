"""Model files (manifest, fetch, verification) and inference back-ends."""
