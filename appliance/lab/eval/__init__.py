"""Offline evaluation of the tracker against ground truth (CLEAR-MOT, IDF1)."""
