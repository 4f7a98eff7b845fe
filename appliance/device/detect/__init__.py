"""Detectors: frame in, typed detections out. The frame is not kept."""
