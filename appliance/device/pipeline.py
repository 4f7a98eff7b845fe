"""One camera's frame loop: frame -> detections -> tracks -> crossings -> window documents.

`CameraPipeline.process` calls one named stage after another; each stage stamps its time
into its STAGES key with the StageClock. The frame goes only to the stages that look at
pixels (detect, faces, wrists) and is dropped when `process` returns: no frame reference
is stored anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from appliance.device.analytics.behaviour import Behaviour, BehaviourWindow
from appliance.device.analytics.demographics import Demographics, FaceLooker
from appliance.device.analytics.lines import LineCounter
from appliance.device.camera_config import CameraConfig
from appliance.device.clock import WallClock
from appliance.device.config import Config
from appliance.device.detect.area import DetectionArea
from appliance.device.detect.detections import Detections, box_iou
from appliance.device.detect.faces import FACE_DETECTORS, AgeGenderModel
from appliance.device.detect.motion import MotionGate
from appliance.device.detect.person import PersonDetector, build_detector
from appliance.device.detect.pose import PoseModel
from appliance.device.inference.backend import build_backend
from appliance.device.inference.models import load_manifest, verified_path
from appliance.device.privacy import protect
from appliance.device.sources.adaptive import AdaptiveRate
from appliance.device.sources.prefetch import Prefetch
from appliance.device.track.tracker import Tracker, Tracks
from appliance.device.window import WindowAggregator
from appliance.errors import ModelError

# The timing keys of StageTimes, health, the bench and `replay`'s stage_ms: decode (the wait
# for the next frame), preprocess (motion gate, detector input), inference, postprocess
# (boxes, tile merge), tracking, counting (lines, window, privacy), demographics (faces),
# behaviour (zones, journeys, groups, heatmap, wrists).
STAGES = ("decode", "preprocess", "inference", "postprocess", "tracking", "counting",
          "demographics", "behaviour")


@dataclass
class StageTimes:
    """Accumulated seconds per stage, for health and the benchmark."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0
    detector_runs: int = 0  # frames the detector ran on (motion skip spares the others)

    def ms_per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {stage: round(1000 * s / n, 3) for stage, s in self.seconds.items()}


class StageClock:
    """Times consecutive stages: `start()` before the first, then `mark(stage)` after each
    adds the seconds since the previous stamp to that stage (a stage marked twice in one
    frame adds both parts). Nothing is allocated per mark beyond the float."""

    __slots__ = ("seconds", "last")

    def __init__(self, times: StageTimes):
        self.seconds = times.seconds  # a stage that is not in STAGES is a KeyError
        self.last = 0.0

    def start(self) -> None:
        self.last = time.perf_counter()

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self.last
        self.last = now


def model_path(config: Config, name: str) -> Path:
    """A model's file, hash verified: the manifest's, or the configured variant's."""
    spec = load_manifest()[name]
    variant = config.models.variant(name)
    if variant is not None:
        spec = replace(spec, file=variant.file, sha256=variant.sha256)
    return verified_path(config.models.dir, spec)


def _untracked_person(detections: Detections, tracks: Tracks, high_score: float) -> bool:
    """A confident detection that no shown track overlaps: someone the tracker has not
    confirmed yet."""
    confident = detections.xyxy[detections.scores >= high_score]
    if not len(confident):
        return False
    if not len(tracks):
        return True
    return bool((box_iou(confident, tracks.xyxy).max(1) < 0.3).any())


def load_detector(config: Config) -> PersonDetector:
    """Verify the configured detector's hash, then load it on the back-end its file format
    calls for (a .tflite variant on LiteRT, ONNX on onnxruntime)."""
    name = config.models.detector
    path = model_path(config, name)
    backend = build_backend(path, config.models.threads, config.models.providers)
    shape = tuple(backend.input_shape)
    if len(shape) != 4 or shape[1] != 3:
        raise ModelError(f"{path}: input shape {shape} is not the 1x3xHxW layout the "
                         f"{name} decoder takes; a variant must keep the model's inputs")
    return build_detector(name, backend, config.detection.min_score, config.detection.nms_iou)


def load_demographics(config: Config) -> Demographics | None:
    """The face detector and age model, hashes verified, when demographics are on."""
    d = config.demographics
    if not d.enabled:
        return None
    def backend(name: str):
        # Chosen per model by its file: .tflite on LiteRT, anything else on onnxruntime.
        return build_backend(model_path(config, name), 1)

    faces = FACE_DETECTORS[d.face_detector](backend(d.face_detector))
    looker = FaceLooker(faces, AgeGenderModel(backend("age_gender")), d.min_face_px)
    return Demographics(d, looker)


def load_pose(config: Config) -> PoseModel | None:
    """MoveNet for shelf reach, hash verified, when behaviour.pose is on."""
    if not config.behaviour.pose:
        return None
    return PoseModel(build_backend(model_path(config, "movenet"), 1))


class PoseBudget:
    """At most `per_second` pose inferences per second of media time (a token bucket)."""

    def __init__(self, per_second: float):
        self.per_second = per_second
        self.tokens = per_second
        self.last: float | None = None

    def take(self, wanted: int, timestamp: float) -> int:
        if self.last is not None:
            self.tokens = min(self.per_second,
                              self.tokens + (timestamp - self.last) * self.per_second)
        self.last = timestamp
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


class CameraPipeline:
    def __init__(self, config: Config, camera: CameraConfig, detector: PersonDetector,
                 clock: str, demographics: Demographics | None = None,
                 pose: PoseModel | None = None, keep_totals: bool = False,
                 wall_clock: WallClock | None = None):
        self.config = config
        self.camera = camera
        self.detector = detector
        self.demographics = demographics
        self.pose = pose
        self.pose_budget = PoseBudget(config.behaviour.pose_per_second)
        self.pose_inferences = 0
        self.behaviour: Behaviour | None = None  # made once the frame size is known
        # Whole-run behaviour figures, for `replay` only: they never close, so a long-running
        # camera must not keep them (the heatmap's per-cell people would only grow).
        self.keep_totals = keep_totals
        self.behaviour_totals: BehaviourWindow | None = None
        self.tracker = Tracker(config.tracker)
        self.counters: list[LineCounter] = []
        d = config.demographics
        self.windows = WindowAggregator(config.store_id, camera.id,
                                        [line.name for line in camera.lines],
                                        config.window_seconds, clock,
                                        age_bands=d.band_names() if demographics else None,
                                        gender=bool(demographics) and d.gender,
                                        min_people=config.privacy.min_count,
                                        wall_clock=wall_clock)
        self.age_totals: dict[str, int] = dict.fromkeys(d.band_names(), 0) \
            if demographics else {}
        self.times = StageTimes()
        self.clock = StageClock(self.times)
        self.motion: MotionGate | None = None  # made with the geometry, if switched on
        self.adaptive = None  # set by run_frames for a live source with adaptive_rate
        self._last_detections = Detections.empty()  # boxes only: what a still scene reuses
        self._candidate = False  # the detector saw someone not tracked yet: look again
        self._detector_ran = False  # this frame's detections are new (motion skip did not reuse)
        self._geometry_ready = False  # lines are scaled once the frame size is known
        # The camera's own frame size, when the decoder scales frames down (run_frames sets
        # it from the source): geometry in its pixels is scaled to the frames that arrive.
        self.source_size: tuple[int, int] | None = None

    def _setup_geometry(self, width: int, height: int) -> None:
        scale = self.camera.scale(width, height, self.source_size)
        roi = None if self.camera.roi is None else \
            np.array(self.camera.roi, np.float32) * np.array(scale, np.float32)
        self.area = DetectionArea(roi, self.camera.tiles, width, height,
                                  self.config.detection.nms_iou)
        self.counters = [LineCounter(line, self.config.counting, scale)
                         for line in self.camera.lines]
        self.behaviour = Behaviour(self.camera, self.config.behaviour, width, height,
                                   self.source_size)
        self.windows.behaviour = BehaviourWindow(self.camera, self.config.behaviour,
                                                 width, height)
        motion = self.config.performance.motion_skip
        if motion.enabled:
            ignore = [np.array(p, np.float32) * np.array(scale, np.float32)
                      for p in self.camera.motion_mask]
            self.motion = MotionGate(motion, width, height, ignore, roi)
        if self.keep_totals:
            self.behaviour_totals = BehaviourWindow(self.camera, self.config.behaviour,
                                                    width, height)
        self._geometry_ready = True

    def process(self, frame: np.ndarray, timestamp: float) -> list[dict]:
        """Process one frame; returns the window documents that closed with it."""
        if not self._geometry_ready:
            self._setup_geometry(frame.shape[1], frame.shape[0])
        self.clock.start()
        detections = self._detect(frame, timestamp)
        tracks = self._track(detections, timestamp)
        visitors = self._look_at_faces(frame, tracks, timestamp)
        crossings = self._cross_lines(tracks, timestamp)
        behaviour = self._follow_behaviour(tracks, timestamp, crossings)
        self._look_at_wrists(frame, tracks, timestamp)
        documents = self._close_windows(timestamp, crossings, visitors, behaviour)
        self.times.frames += 1
        return documents

    def detect(self, frame: np.ndarray, timestamp: float) -> Detections:
        """The detection stage alone, as `process` runs it (what the lab's door replays
        record once per frame, appliance/lab/eval/door.py)."""
        if not self._geometry_ready:
            self._setup_geometry(frame.shape[1], frame.shape[0])
        self.clock.start()
        return self._detect(frame, timestamp)

    # The stages, in the order `process` calls them; each one ends with its clock mark.

    def _detect(self, frame: np.ndarray, timestamp: float) -> Detections:
        """People in the frame (preprocess, inference, postprocess; the motion gate counts
        as preprocess): the detector on the whole frame or on each window of the detection
        area, or the last detections again when motion skip finds nothing moved."""
        # A second look right after the detector saw someone it does not track yet (a
        # tentative track needs two sightings), once; then the gate decides again.
        still = self.motion is not None and not self._candidate and \
            self.motion.still(frame, timestamp, self.tracker.fastest())
        self._candidate = False
        self._detector_ran = not still
        if still:
            # Nothing moved: the last detections stand and the tracks stay alive.
            self.clock.mark("preprocess")
            return self._last_detections
        if self.area.whole_frame:
            detections = self._run_detector(frame)
        else:
            # Stage times summed over the windows, comparable with a whole frame's.
            parts = [(self._run_detector(frame[y1:y2, x1:x2]), (x1, y1))
                     for x1, y1, x2, y2 in self.area.windows]
            detections = self.area.merge(parts)
            self.clock.mark("postprocess")
        self._last_detections = detections
        return detections

    def _run_detector(self, image: np.ndarray) -> Detections:
        tensor, letterbox = self.detector.preprocess(image)  # copies into the input
        self.clock.mark("preprocess")
        outputs = self.detector.backend.run(tensor)
        self.detector.forget()  # its input buffers held a copy of the frame
        self.clock.mark("inference")
        detections = self.detector.postprocess(outputs, letterbox)
        self.clock.mark("postprocess")
        return detections

    def _track(self, detections: Detections, timestamp: float) -> Tracks:
        self.times.detector_runs += self._detector_ran
        tracks = self.tracker.update(detections, timestamp)
        if self.motion is not None and self._detector_ran:
            self._candidate = _untracked_person(detections, tracks,
                                                self.config.tracker.high_score)
        self.clock.mark("tracking")
        return tracks

    def _look_at_faces(self, frame: np.ndarray, tracks: Tracks, timestamp: float) -> list:
        """Age and gender of the people tracked, when demographics are on."""
        visitors = self.demographics.update(frame, tracks, timestamp) \
            if self.demographics else []
        self.clock.mark("demographics")
        return visitors

    def _cross_lines(self, tracks: Tracks, timestamp: float) -> list:
        crossings = [c for counter in self.counters for c in counter.update(tracks, timestamp)]
        self.clock.mark("counting")
        return crossings

    def _follow_behaviour(self, tracks: Tracks, timestamp: float, crossings: list):
        """Zones, journeys, groups and heatmap for this frame."""
        behaviour = self.behaviour.update(tracks, timestamp, crossings)
        if self.behaviour_totals is not None:
            self.behaviour_totals.add(behaviour)
        self.clock.mark("behaviour")
        return behaviour

    def _look_at_wrists(self, frame: np.ndarray, tracks: Tracks, timestamp: float) -> None:
        """MoveNet on the people stopped at a shelf, within the per-second budget, when
        behaviour.pose is on (timed as behaviour)."""
        if self.pose is not None:
            self._reach(frame, tracks, timestamp)
        self.clock.mark("behaviour")

    def _reach(self, frame: np.ndarray, tracks: Tracks, timestamp: float) -> None:
        wanted = self.behaviour.pose_wanted()
        granted = self.pose_budget.take(len(wanted), timestamp)
        if not granted:
            return
        chosen = wanted[:granted]
        rows = [int(np.flatnonzero(tracks.ids == i)[0]) for i in chosen if i in tracks.ids]
        if not rows:
            return
        wrists = self.pose.wrists(frame, tracks.xyxy[rows])
        self.pose_inferences += len(rows)
        self.behaviour.add_wrists(tracks.ids[rows].tolist(), wrists.points, wrists.scores)

    def _close_windows(self, timestamp: float, crossings: list, visitors: list,
                       behaviour) -> list[dict]:
        """This frame into the open window; the windows that closed, privacy applied
        (timed as counting)."""
        self._count_ages(visitors)
        documents = [protect(d, self.config.privacy)
                     for d in self.windows.add(timestamp, crossings, visitors, behaviour)]
        self.clock.mark("counting")
        return documents

    @property
    def fps_cap(self) -> float | None:
        """The processing-rate cap in force, for health."""
        return self.adaptive.fps_cap if self.adaptive is not None else self.camera.fps

    def close_due(self, timestamp: float) -> list[dict]:
        """No frame came (a live camera is down): the windows that ended by now, privacy
        applied, so they leave on time."""
        return [protect(d, self.config.privacy) for d in self.windows.close_due(timestamp)]

    def finish(self) -> list[dict]:
        """The source ended: close the open window."""
        ended = self.tracker.flush()
        visitors = self.demographics.end(ended) if self.demographics else []
        self._count_ages(visitors)
        behaviour = None
        if self.behaviour is not None:
            behaviour = self.behaviour.finish(ended)
            if self.behaviour_totals is not None:
                self.behaviour_totals.add(behaviour)
        return [protect(d, self.config.privacy)
                for d in self.windows.flush(visitors, behaviour)]

    def behaviour_summary(self) -> dict:
        """Zones, journeys, groups and heatmap over the whole run (for `replay`); heatmap
        cells with fewer than privacy.min_count people are blanked, as in the windows."""
        if self.behaviour_totals is None:
            return {}
        return self.behaviour_totals.emit(self.config.privacy.min_count)

    def _count_ages(self, visitors) -> None:
        for visitor in visitors:
            self.age_totals[visitor.band] += 1

    def totals(self) -> dict[str, dict[str, int]]:
        return {counter.name: dict(counter.counts) for counter in self.counters} or \
            {line.name: {"in": 0, "out": 0} for line in self.camera.lines}


def run_frames(pipeline: CameraPipeline, frames: Iterable[tuple[np.ndarray, float]],
               emit: Callable[[dict], None], on_frame: Callable[[float], None] | None = None
               ) -> None:
    """Drive a pipeline from a source, timing decode, until the source ends. With
    performance.decode_thread, decoding runs ahead on its own thread (decode time is then
    the wait for the next frame). A live source that is down yields (None, now) about once
    a second: the windows that ended close then, and on_frame still hears from the loop."""
    pipeline.source_size = getattr(frames, "source_size", None)
    adaptive = None
    if pipeline.config.performance.adaptive_rate and getattr(frames, "live", False):
        adaptive = pipeline.adaptive = AdaptiveRate(frames, pipeline.camera.fps)
        # The back-end's first run is slow (its warm-up): done here on a blank image, so
        # that the cap starts from the first frame's run, busy scene or still.
        detector = pipeline.detector
        detector.backend.run(detector.preprocess(np.zeros((64, 64, 3), np.uint8))[0])
        detector.forget()
    if pipeline.config.performance.decode_thread:
        frames = Prefetch(frames)
    iterator = iter(frames)
    clock, times = pipeline.clock, pipeline.times
    while True:
        clock.start()
        item = next(iterator, None)
        clock.mark("decode")
        if item is None:
            break
        frame, timestamp = item
        del item
        if frame is None:
            documents = pipeline.close_due(timestamp)
        else:
            runs, inference = times.detector_runs, times.seconds["inference"]
            documents = pipeline.process(frame, timestamp)
            del frame  # released before anything else runs: no frame outlives its step
            # The detector's time alone moves the cap (people-independent: sources/adaptive.py).
            if adaptive is not None and times.detector_runs > runs:
                adaptive.after_run(times.seconds["inference"] - inference, timestamp)
        for document in documents:
            emit(document)
        if on_frame is not None:
            on_frame(timestamp)
    for document in pipeline.finish():
        emit(document)
