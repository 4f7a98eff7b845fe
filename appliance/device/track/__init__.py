"""Tracking: detections in, identities over time out."""
