"""Journeys: a few flags per living track, folded into a summary when the track ends.

The flags: came in (crossed a door line inwards, or was inside an `entrance` zone), the
zone visits it completed, the shelves it interacted with, reached a `checkout` zone, and
how long it was in `staff` zones. A track that was never seen moving is a fixture
(mannequin, poster) and is dropped; one that spent more than `staff_share` of its moving
time in staff zones is staff and kept out of the visitor figures. The summary holds no
id and no position, and the flags are discarded with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from appliance.device.analytics.zones import Visit


@dataclass(frozen=True)
class Journey:
    """One person's journey, as folded into the window's counts."""

    staff: bool
    entered: bool
    visits: tuple[tuple[str, float], ...]  # (zone, dwell seconds), the id dropped
    shelves: tuple[str, ...]  # shelves interacted with
    reached_checkout: bool
    moving_seconds: float = 0.0


@dataclass
class _Flags:
    entered: bool = False
    moved: bool = False
    seconds: float = 0.0  # seen
    staff_seconds: float = 0.0
    visits: list[Visit] = field(default_factory=list)
    shelves: set[str] = field(default_factory=set)
    reached_checkout: bool = False


class Journeys:
    def __init__(self, zone_kinds: dict[str, str], staff_share: float):
        self.zone_kinds = zone_kinds
        self.staff_share = staff_share
        self._flags: dict[int, _Flags] = {}

    def seen(self, track_id: int, dt: float, zones_now: list[str], moving: bool) -> None:
        """A person seen for `dt` seconds, inside `zones_now`."""
        flags = self._flags.setdefault(track_id, _Flags())
        flags.seconds += dt
        flags.moved |= moving
        kinds = {self.zone_kinds[z] for z in zones_now}
        if "staff" in kinds:
            flags.staff_seconds += dt
        if "checkout" in kinds:
            flags.reached_checkout = True
        if "entrance" in kinds:
            flags.entered = True

    def crossed_in(self, track_id: int) -> None:
        self._flags.setdefault(track_id, _Flags()).entered = True

    def visited(self, visits: list[Visit]) -> None:
        for visit in visits:
            self._flags.setdefault(visit.track_id, _Flags()).visits.append(visit)

    def interacted(self, track_id: int, shelf: str) -> None:
        self._flags.setdefault(track_id, _Flags()).shelves.add(shelf)

    def end(self, track_ids) -> list[Journey]:
        """Fold and forget these tracks; fixtures give nothing."""
        journeys = []
        for track_id in track_ids:
            flags = self._flags.pop(track_id, None)
            if flags is None or flags.seconds <= 0 or \
                    not (flags.moved or flags.visits or flags.staff_seconds):
                continue
            journeys.append(Journey(
                staff=flags.staff_seconds > self.staff_share * flags.seconds,
                entered=flags.entered,
                visits=tuple((v.zone, v.seconds) for v in flags.visits),
                shelves=tuple(sorted(flags.shelves)),
                reached_checkout=flags.reached_checkout,
                moving_seconds=flags.seconds,
            ))
        return journeys

    def alive(self) -> list[int]:
        return list(self._flags)
