"""Coarse occupancy grid: person-seconds per cell of a cols x rows grid over the frame.

A cell's figure is published only when at least `min_people` different people stood in it
during the window (the ids are kept for that count only, and dropped when the window
closes), so one person's path cannot be read off a quiet heatmap.
"""

from __future__ import annotations

import numpy as np


class Heatmap:
    def __init__(self, cols: int, rows: int, width: int, height: int):
        self.cols, self.rows = cols, rows
        self.cell = (width / cols, height / rows)
        self.seconds = np.zeros((rows, cols), np.float64)
        self._people: dict[tuple[int, int], set[int]] = {}

    def add(self, feet: np.ndarray, ids: list[int], dt: float) -> None:
        if not len(ids):
            return
        cols = np.clip((feet[:, 0] // self.cell[0]).astype(int), 0, self.cols - 1)
        rows = np.clip((feet[:, 1] // self.cell[1]).astype(int), 0, self.rows - 1)
        np.add.at(self.seconds, (rows, cols), dt)
        for r, c, track_id in zip(rows.tolist(), cols.tolist(), ids, strict=True):
            self._people.setdefault((r, c), set()).add(track_id)

    def emit(self, min_people: int) -> tuple[dict, bool]:
        """The window's document part and whether any non-empty cell was blanked; resets."""
        blanked = False
        rows = []
        for r in range(self.rows):
            cells = []
            for c in range(self.cols):
                value = int(round(self.seconds[r, c]))
                if 0 < len(self._people.get((r, c), ())) < min_people:
                    cells.append("")
                    blanked = True
                else:
                    cells.append(str(value))
            rows.append(",".join(cells))
        self.seconds[:] = 0
        self._people.clear()
        return {"cols": self.cols, "rows": self.rows, "person_seconds": ";".join(rows)}, blanked
