"""The lab: benchmarks, accuracy evaluations and tools for a developer's machine. Never in
the device wheel (pyproject.toml excludes it); it may import device and hq, never the
other way round."""
