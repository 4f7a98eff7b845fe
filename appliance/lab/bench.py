"""`shopper-edge bench`: where the time goes, on the shared CAVIAR clips and Mall frames.

For each input it measures, in one process and on the same frames (decoded again for each
measurement, so no frame is held and peak RSS is the appliance's own), the first four in
turn `--rounds` times (default 3), each speed the best of its rounds:
- `inference_fps`: the detector's back-end run alone on preprocessed tensors;
- `detector_fps`: preprocess + inference + postprocess (what any detector user pays);
- `end_to_end_fps`: the full appliance loop from the source (decode, detect, track, count,
  window) as the config sets it up (motion skip included), with its per-stage milliseconds;
- `every_frame_fps`: the same with motion skip off, the detector on every frame, and
  `ratio_vs_bare_inference` = every_frame_fps / inference_fps (the overhead of the rest);
- `reference_fps`: the reference pipeline most people would assemble (the same detector,
  `trackers`' ByteTrackTracker, supervision's LineZone; appliance/lab/bench_reference.py) on the
  same frames, with its counts, and `ratio_vs_reference` = end_to_end_fps / reference_fps;
- with demographics on (faces + age on the tracked visitors, default budget): the added
  milliseconds per frame and per visitor, and face inferences per visitor;
- `motion_cpu`: CPU milliseconds per frame (process time: onnxruntime's threads included)
  of quiet and busy frames with motion skip on, in the same run: a frame is busy when the
  tracker shows a visitor (a track that moves at some point) in the pass with motion skip
  off, quiet when no busy frame is within a second of it; `quiet_over_busy` (target 0.25);
  `motion_cpu_5fps`: the same with the clips capped at 5 fps (a Pi 4's rate);
- `precision`: FP32 ONNX, INT8 ONNX (appliance/lab/quantize.py, forced and flagged if it breaks its
  bounds) and INT8 TFLite (YOLOX-nano converted with onnx2tf when the file is there, see
  docs/performance.md; YOLOv8n from the mirror, AGPL, bench only): bare inference and end
  to end fps, CPU per frame, counts against truth.json, Mall count MAE;
- `soak`: one camera process (a fresh one, spawned) looping the CAVIAR clips end to end as
  the pixel worker runs them, motion skip off (the detector on every frame: the worst case),
  its RSS every 2,000 frames, peak RSS (target 300 MB) and `rss_growth` from frame 2,000 to
  the last (target 1.05);
and writes everything to a JSON file. Speed figures, never asserted by unit tests.

Runs as `shopper-edge bench` or `python -m appliance.lab.bench` (which has every option).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from itertools import islice
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from appliance.device.config import load_config
from appliance.device.pipeline import CameraPipeline, load_demographics, load_detector, run_frames
from appliance.device.sources import FileSource
from appliance.lab.bench_options import add_arguments

REPO = Path(__file__).resolve().parents[2]
TARGETS = {"ratio_vs_reference": 1.5, "ratio_vs_bare_inference": 0.85, "peak_rss_mb": 300,
           "rss_growth": 1.05, "quiet_over_busy": 0.25}
MALL_SCORE = 0.3  # a detection at or above this score is a person, for the Mall count MAE
QUIET_MARGIN_S = 1.0  # a quiet frame has no busy frame this close, either side


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _image_frames(paths: list[Path], fps: float):
    for index, path in enumerate(paths):
        frame = cv2.imread(str(path))
        if frame is not None:
            yield frame, index / fps


def _detector_rates(detector, frames) -> tuple[float, float, int]:
    """Detector-only speeds on the same frames (decode not timed, no frame kept)."""
    detector_seconds = inference_seconds = 0.0
    count = 0
    for frame, _ in frames:
        t0 = time.perf_counter()
        tensor, box = detector.preprocess(frame)
        t1 = time.perf_counter()
        outputs = detector.backend.run(tensor)
        t2 = time.perf_counter()
        detector.postprocess(outputs, box)
        detector_seconds += time.perf_counter() - t0
        inference_seconds += t2 - t1
        count += 1
    return round(count / inference_seconds, 2), round(count / detector_seconds, 2), count


def _every_frame(config):
    """The config with motion skip off: the detector on every frame."""
    motion = replace(config.performance.motion_skip, enabled=False)
    return replace(config, performance=replace(config.performance, motion_skip=motion))


def _run_pipeline(config, detector, frames) -> tuple[CameraPipeline, float]:
    pipeline = CameraPipeline(config, config.cameras[0], detector, "media")
    started = time.perf_counter()
    run_frames(pipeline, frames, lambda _doc: None)
    return pipeline, time.perf_counter() - started


def _measure(name: str, config, detector, frames_factory, truth=None, rounds: int = 3
             ) -> dict:
    """Bare inference, the appliance every frame and as configured, and the reference, in
    turn, `rounds` times over the same frames; each speed is the best of its rounds (as
    timeit does: the machine is shared, and other jobs only ever slow a round down)."""
    first = next(iter(frames_factory()))[0]
    detector.detect(first)  # warm-up: first-run allocations are not the steady state
    del first
    every = _every_frame(config)
    skipping = config.performance.motion_skip.enabled
    speeds: dict[str, list[float]] = {}
    for _ in range(rounds):
        inference_fps, detector_fps, _ = _detector_rates(detector, frames_factory())
        speeds.setdefault("inference_fps", []).append(inference_fps)
        speeds.setdefault("detector_fps", []).append(detector_fps)
        pipeline, elapsed = _run_pipeline(every, detector, frames_factory())
        speeds.setdefault("every_frame_fps", []).append(pipeline.times.frames / elapsed)
        every_frame = pipeline
        if skipping:
            pipeline, elapsed = _run_pipeline(config, detector, frames_factory())
        speeds.setdefault("end_to_end_fps", []).append(pipeline.times.frames / elapsed)
        reference = _reference(config, detector, frames_factory)
        if reference is not None:
            speeds.setdefault("reference_fps", []).append(
                reference["frames"] / reference["seconds"])
    fps = {key: round(max(values), 2) for key, values in speeds.items()}
    result = {
        "input": name,
        "frames": pipeline.times.frames,
        "rounds": rounds,
        "inference_fps": fps["inference_fps"],
        "detector_fps": fps["detector_fps"],
        "motion_skip": skipping,
        "end_to_end_fps": fps["end_to_end_fps"],
        "every_frame_fps": fps["every_frame_fps"],
        "stage_ms": every_frame.times.ms_per_frame(),
        "lines": pipeline.totals(),
        "every_frame_lines": every_frame.totals(),
        "peak_rss_mb": _peak_rss_mb(),
    }
    # The overhead target is for every frame processed: the same config, motion skip off.
    result["ratio_vs_bare_inference"] = round(fps["every_frame_fps"] / fps["inference_fps"], 3)
    if reference is not None:
        result["reference_fps"] = fps["reference_fps"]
        result["reference_lines"] = reference["lines"]
        result["ratio_vs_reference"] = round(fps["end_to_end_fps"] / fps["reference_fps"], 3)
    if truth is not None:
        result["truth"] = truth
    return result


def _reference(config, detector, frames_factory) -> dict | None:
    try:
        from appliance.lab.bench_reference import run_reference
    except ImportError:
        return None
    camera = config.cameras[0]
    try:
        return run_reference(detector, frames_factory(), camera.lines[0], camera.fps or 25.0)
    except ImportError:  # trackers / supervision not installed: pip install '.[dev]'
        return None


class _Sections:
    """Wall and CPU seconds of each part of the bench."""

    def __init__(self):
        self.seconds: dict[str, dict[str, float]] = {}

    def start(self, name: str) -> None:
        self._name, self._wall, self._cpu = name, time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.seconds[self._name] = {"wall": round(time.perf_counter() - self._wall, 1),
                                    "cpu": round(time.process_time() - self._cpu, 1)}


def run_bench(args) -> int:
    data = Path(args.data) if args.data else REPO.parent / "shared" / "data"
    config_path = Path(args.config or REPO / "examples" / "caviar-front.yaml")
    config = load_config(config_path)
    detector = load_detector(config)
    limit = args.clip_frames or None
    fps = config.cameras[0].fps

    def clip_frames(clip: Path):
        return lambda: islice(FileSource(str(clip), fps), limit)

    results = []
    truth = json.loads((data / "caviar_front" / "truth.json").read_text())
    clips = sorted((data / "caviar_front" / "clips").glob("*.mpg"))
    sections = _Sections()
    sections.start("detector, end to end, reference")
    for clip in clips:
        entered, left = truth[clip.name][:2]
        results.append(_measure(clip.name, config, detector, clip_frames(clip),
                                {"in": entered, "out": left}, rounds=args.rounds))
    mall_all = sorted((data / "mall" / "frames").glob("*.jpg"))
    mall = mall_all[: args.mall_frames]
    if mall:
        results.append(_measure(f"mall/frames ({len(mall)})", config, detector,
                                lambda: _image_frames(mall, 2.0), rounds=args.rounds))
    sections.stop()
    sections.start("demographics")
    demographics = []
    on = replace(config, demographics=replace(config.demographics, enabled=True))
    for clip in clips:
        demographics.append(_measure_demographics(clip.name, on, detector, clip_frames(clip)))
    sections.stop()
    sections.start("cheaper frames, motion CPU")
    variants, frame_cpu = [], []
    for clip in clips:
        rows, per_frame = _measure_variants(clip.name, config, detector, clip_frames(clip))
        variants += rows
        frame_cpu.append(per_frame)
    motion = _motion_cpu(frame_cpu, round(QUIET_MARGIN_S * (fps or 25.0)))
    sections.stop()
    sections.start("motion CPU at 5 fps")
    motion_5fps = motion_cpu_at(config, detector, clips, PI4_FPS, limit)
    sections.stop()
    sections.start("precision")
    step = len(mall_all) // max(args.precision_mall_frames, 1) or 1
    precision = _precision(config, clips, clip_frames, truth,
                           mall_all[::step][: args.precision_mall_frames],
                           data / "mall" / "counts.csv", args)
    sections.stop()
    soak = None
    if args.soak_frames > 0:
        sections.start("soak")
        soak = _run_soak(config_path, clips, args.soak_frames)
        sections.stop()
    report = {
        "detector": config.models.detector,
        "threads": config.models.threads,
        "peak_rss_mb": _peak_rss_mb(),
        "targets": TARGETS,
        "results": results,
        "demographics": demographics,
        "cheaper_frames": variants,
        "motion_cpu": motion,
        "motion_cpu_5fps": motion_5fps,
        "precision": precision,
        "soak": soak,
        "bench_seconds": sections.seconds,
    }
    _print_table(report)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


VARIANTS = {
    "every frame": {},
    "decode thread": {"decode_thread": True},
    "motion skip": {"motion_skip": {"enabled": True}},
    "decode thread + motion skip": {"decode_thread": True, "motion_skip": {"enabled": True}},
}


def _measure_variants(name: str, config, detector, frames_factory) -> tuple[list[dict], dict]:
    """The same clip with each switch of cheaper frames: speed, CPU seconds, counts. Also
    returns, per frame, the CPU seconds of each variant and whether a visitor was in view
    (from the tracker, in the pass that runs the detector on every frame)."""
    rows, per_frame = [], {}
    for label, switches in VARIANTS.items():
        # The config's own gate settings (and motion mask), switched on or off.
        motion = replace(config.performance.motion_skip,
                         **switches.get("motion_skip", {"enabled": False}))
        performance = replace(config.performance, motion_skip=motion,
                              decode_thread=switches.get("decode_thread", False),
                              adaptive_rate=False)
        variant = replace(config, performance=performance)
        pipeline = CameraPipeline(variant, variant.cameras[0], detector, "media")
        if label == "every frame":
            seen = pipeline.tracker = _Seen(pipeline.tracker)
        marks = [time.process_time()]
        started = time.perf_counter()
        run_frames(pipeline, frames_factory(), lambda _doc: None,
                   lambda _t, marks=marks: marks.append(time.process_time()))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - marks[0]
        per_frame[label] = np.diff(marks)  # decode + process of each frame
        rows.append({"input": name, "variant": label, "frames": pipeline.times.frames,
                     "end_to_end_fps": round(pipeline.times.frames / elapsed, 2),
                     "cpu_seconds": round(cpu, 2),
                     "detector_skipped": pipeline.motion.skipped if pipeline.motion else 0,
                     "lines": pipeline.totals()})
    per_frame["busy"] = seen.busy()
    return rows, per_frame


class _Seen:
    """A pipeline's tracker, recording which track ids each frame shows and which ones
    moved (visitors, not mannequins)."""

    def __init__(self, tracker):
        self.tracker = tracker
        self.shown: list[set[int]] = []
        self.moved: set[int] = set()

    def update(self, detections, timestamp):
        tracks = self.tracker.update(detections, timestamp)
        self.shown.append(set(tracks.ids.tolist()))
        self.moved.update(tracks.ids[tracks.moving].tolist())
        return tracks

    def __getattr__(self, name):
        return getattr(self.tracker, name)

    def busy(self) -> np.ndarray:
        """Per frame: a visitor (a track that moves at some point) is in view."""
        return np.array([bool(ids & self.moved) for ids in self.shown], bool)


PI4_FPS = 5.0  # the processing rate a Pi 4 manages (issue 15)


def motion_cpu_at(config, detector, clips: list[Path], rate: float, limit=None) -> dict:
    """Quiet and busy CPU per frame with the clips capped at `rate` frames a second: the
    motion gate compares the tracker's walking speed (per second of media time) with
    `walking_speed`, so it must skip as well at 5 fps as at 25."""
    frame_cpu = []
    for clip in clips:
        _, per_frame = _measure_variants(
            clip.name, config, detector,
            lambda clip=clip: islice(FileSource(str(clip), rate), limit))
        frame_cpu.append(per_frame)
    return {"fps": rate, **_motion_cpu(frame_cpu, round(QUIET_MARGIN_S * rate))}


def _motion_cpu(clips: list[dict], margin: int) -> dict:
    """CPU per quiet and per busy frame, with motion skip on and (for scale) off."""
    quiet, busy = [], []
    for per_frame in clips:
        window = np.convolve(per_frame["busy"], np.ones(2 * margin + 1))  # "full"
        near = window[margin:margin + len(per_frame["busy"])] > 0
        quiet.append(~near)
        busy.append(per_frame["busy"])
    quiet, busy = np.concatenate(quiet), np.concatenate(busy)

    def ms(label: str, mask: np.ndarray) -> float | None:
        cpu = np.concatenate([per_frame[label] for per_frame in clips])[mask]
        return round(1000 * float(cpu.mean()), 3) if cpu.size else None

    result = {"quiet_frames": int(quiet.sum()), "busy_frames": int(busy.sum()),
              "between_frames": int((~quiet & ~busy).sum()), "quiet_margin_frames": margin,
              "quiet_cpu_ms_per_frame": ms("motion skip", quiet),
              "busy_cpu_ms_per_frame": ms("motion skip", busy),
              "quiet_cpu_ms_per_frame_skip_off": ms("every frame", quiet),
              "busy_cpu_ms_per_frame_skip_off": ms("every frame", busy)}
    q, b = result["quiet_cpu_ms_per_frame"], result["busy_cpu_ms_per_frame"]
    result["quiet_over_busy"] = round(q / b, 3) if q is not None and b else None
    return result


def _precision(config, clips, clip_frames, truth, mall, mall_counts: Path, args) -> list[dict]:
    """Each back-end end to end on the clips (interleaved clip by clip, so a busy moment of
    the machine falls on all of them) and on Mall frames."""
    from appliance.device.detect.person import YoloxDetector
    from appliance.device.inference.backend import OnnxBackend
    from appliance.device.inference.models import load_manifest, verified_path

    # Back-ends compared on every frame: with motion skip, their speeds would be the gate's.
    config = _every_frame(config)
    threads = config.models.threads
    options = {"min_score": config.detection.min_score, "nms_iou": config.detection.nms_iou}
    fp32 = verified_path(config.models.dir, load_manifest()["yolox_nano"])
    rows = [({"backend": "FP32 ONNX", "model": "yolox_nano", "runtime": "onnxruntime"},
             YoloxDetector(OnnxBackend(fp32, threads), **options))]
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as work:
        if args.quantize_frames > 0:
            calibrate = next((c for c in clips if c.name == "OneLeaveShop1front.mpg"), clips[0])
            int8, report = _quantize(fp32, calibrate, Path(work), args.quantize_frames,
                                     threads)
            rows.append(({"backend": "INT8 ONNX (QDQ)", "model": "yolox_nano",
                          "runtime": "onnxruntime", "quantize": report},
                         YoloxDetector(OnnxBackend(int8, threads), **options)))
        if args.yolox_tflite and Path(args.yolox_tflite).is_file():
            from appliance.device.inference.tflite import TfliteBackend

            rows.append(({"backend": "INT8 TFLite", "model": "yolox_nano (onnx2tf)",
                          "runtime": "ai-edge-litert", "file": str(args.yolox_tflite)},
                         YoloxDetector(_Nchw(TfliteBackend(args.yolox_tflite, threads)),
                                       **options)))
        yolov8 = REPO.parent / "shared" / "models" / "yolov8n_full_integer_quant.tflite"
        if yolov8.is_file():
            from appliance.device.detect.person import Yolov8Detector
            from appliance.device.inference.tflite import TfliteBackend

            rows.append(({"backend": "INT8 TFLite", "model": "yolov8n (AGPL, bench only)",
                          "runtime": "ai-edge-litert"},
                         Yolov8Detector(TfliteBackend(yolov8, threads), **options)))
        return _run_backends(config, rows, clips, clip_frames, truth, mall, mall_counts)


def _run_backends(config, rows, clips, clip_frames, truth, mall, mall_counts) -> list[dict]:
    totals = [{"frames": 0, "seconds": 0.0, "cpu": 0.0, "inference": 0.0, "counts": {}}
              for _ in rows]
    first = next(iter(clip_frames(clips[0])()))[0]
    for _, detector in rows:
        detector.detect(first)  # warm-up
    del first
    for clip in clips:
        for (_, detector), total in zip(rows, totals, strict=True):
            pipeline = CameraPipeline(config, config.cameras[0], detector, "media")
            started, cpu = time.perf_counter(), time.process_time()
            run_frames(pipeline, clip_frames(clip)(), lambda _doc: None)
            total["seconds"] += time.perf_counter() - started
            total["cpu"] += time.process_time() - cpu
            total["frames"] += pipeline.times.frames
            total["inference"] += pipeline.times.seconds["inference"]
            total["counts"][clip.name] = next(iter(pipeline.totals().values()))
    people = {int(line.split(",")[0]): int(line.split(",")[1])
              for line in mall_counts.read_text().splitlines()[1:] if line.strip()}
    results = []
    for (about, detector), total in zip(rows, totals, strict=True):
        errors = sum(abs(c["in"] - truth[name][0]) + abs(c["out"] - truth[name][1])
                     for name, c in total["counts"].items())
        mae = []
        for path in mall:
            found = detector.detect(cv2.imread(str(path)))
            detector.forget()
            mae.append(abs(int((found.scores >= MALL_SCORE).sum()) -
                           people[int(path.stem.split("_")[-1])]))
        results.append({**about, "frames": total["frames"],
                        "inference_fps": round(total["frames"] / total["inference"], 2),
                        "end_to_end_fps": round(total["frames"] / total["seconds"], 2),
                        "cpu_ms_per_frame": round(1000 * total["cpu"] / total["frames"], 2),
                        "counts": total["counts"], "count_errors": errors,
                        "mall_frames": len(mae), "mall_score": MALL_SCORE,
                        "mall_count_mae": round(float(np.mean(mae)), 2) if mae else None})
    return results


class _Nchw:
    """An NHWC back-end (a TFLite conversion) behind the NCHW input YOLOX's code fills."""

    def __init__(self, backend):
        self.backend = backend
        n, h, w, c = backend.input_shape
        self.input_shape = (n, c, h, w)

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self.backend.run(np.ascontiguousarray(tensor.transpose(0, 2, 3, 1)))


def _quantize(model: Path, clip: Path, work: Path, frames: int, threads: int):
    """appliance/lab/quantize.py into a temporary folder, --force: measured even past its bounds,
    which its report (kept here) flags."""
    out, report = work / "yolox_nano_int8.onnx", work / "quantize.json"
    done = subprocess.run(
        [sys.executable, "-m", "appliance.lab.quantize", str(model), "--calibrate",
         str(clip), "--out", str(out), "--model-kind", "yolox", "--frames", str(frames),
         "--check-frames", str(frames), "--runs", "3", "--threads", str(threads), "--force",
         "--json", str(report)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"appliance/lab/quantize.py failed: {done.stderr.strip()}")
    full = json.loads(report.read_text())
    keep = ("calibration_source", "calibration_frames", "check_frames", "agreement",
            "count_mae", "bounds", "refused", "forced", "float_ms", "int8_ms")
    return out, {key: full.get(key) for key in keep}


def _rss_mb(field: str = "VmRSS") -> float | None:
    """This process's resident set size now (VmRSS) or at its peak (VmHWM), MB. (A spawned
    child's ru_maxrss starts from its parent's peak: fork copies it, exec keeps it.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _run_soak(config_path: Path, clips: list[Path], frames: int) -> dict:
    """The soak in a fresh process, so its RSS is one camera's, not the bench's."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_soak, str(config_path), [str(c) for c in clips], frames).result()


def _soak(config_path: str, clips: list[str], frames: int) -> dict:
    """One camera as the pixel worker runs it (appliance/device/worker.py: pipeline, guard-checked
    hand-over of windows and progress), looping the clips with motion skip off."""
    from appliance.device.pipeline import load_pose
    from appliance.device.sources import SourceStats
    from appliance.device.worker import Handoff

    config = load_config(config_path)
    motion = replace(config.performance.motion_skip, enabled=False)
    config = replace(config, performance=replace(config.performance, motion_skip=motion))
    camera = config.cameras[0]
    step = 2000 if frames >= 4000 else max(frames // 10, 1)
    rss = {0: _rss_mb()}
    detector = load_detector(config)
    pipeline = CameraPipeline(config, camera, detector, "media", load_demographics(config),
                              load_pose(config))

    started, cpu = time.perf_counter(), time.process_time()
    with open(os.devnull, "w") as sink:
        handoff = Handoff(sink, config.store_id, camera.id, pipeline, SourceStats())

        def on_frame(_timestamp: float) -> None:
            handoff.progress()
            done = pipeline.times.frames
            if done % step == 0 or done == frames:
                rss[done] = _rss_mb()

        run_frames(pipeline, _looped(clips, camera.fps, frames), handoff.window, on_frame)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    done = pipeline.times.frames
    first, last = rss.get(step), rss.get(done)
    return {"frames": done, "motion_skip": False, "every": step,
            "fps": round(done / elapsed, 2), "cpu_ms_per_frame": round(1000 * cpu / done, 2),
            "rss_mb_by_frame": rss, "baseline_frame": step, "final_frame": done,
            "rss_mb_at_2000": first, "rss_mb_at_20000": last,
            "rss_growth": round(last / first, 4) if first and last else None,
            "peak_rss_mb": _rss_mb("VmHWM")}


def _looped(clips: list[str], max_fps, frames: int):
    """The clips one after the other, again and again, on one continuous media clock."""
    offset, count = 0.0, 0
    while True:
        for clip in clips:
            source = FileSource(clip, max_fps)
            for frame, timestamp in source:
                yield frame, offset + timestamp
                del frame
                count += 1
                if count == frames:
                    return
            offset += source.stats.frames_read / source.fps


def _measure_demographics(name: str, config, detector, frames_factory) -> dict:
    pipeline = CameraPipeline(config, config.cameras[0], detector, "media",
                              load_demographics(config))
    started = time.perf_counter()
    run_frames(pipeline, frames_factory(), lambda _doc: None)
    elapsed = time.perf_counter() - started
    visitors = sum(pipeline.age_totals.values())
    seconds = pipeline.times.seconds["demographics"]
    return {
        "input": name,
        "frames": pipeline.times.frames,
        "end_to_end_fps": round(pipeline.times.frames / elapsed, 2),
        "demographics_ms_per_frame": pipeline.times.ms_per_frame()["demographics"],
        "visitors": visitors,
        "face_inferences": pipeline.demographics.face_inferences,
        "face_inferences_per_visitor": round(pipeline.demographics.face_inferences / visitors, 1)
        if visitors else None,
        "demographics_ms_per_visitor": round(1000 * seconds / visitors, 1) if visitors else None,
        "age_bands": pipeline.age_totals,
    }


def _print_table(report: dict) -> None:
    stages = list(report["results"][0]["stage_ms"]) if report["results"] else []
    head = ["input", "frames", "infer fps", "det fps", "every-frame fps", "every/infer",
            "e2e fps", "ref fps", "e2e/ref"] + [f"{s} ms" for s in stages] + \
        ["in/out (truth)", "ref in/out"]
    rows = []
    for r in report["results"]:
        counts = "; ".join(f"{v['in']}/{v['out']}" for v in r["lines"].values())
        if "truth" in r:
            counts += f" ({r['truth']['in']}/{r['truth']['out']})"
        reference = "; ".join(f"{v['in']}/{v['out']}"
                              for v in r.get("reference_lines", {}).values())
        rows.append([r["input"], r["frames"], r["inference_fps"], r["detector_fps"],
                     r["every_frame_fps"], r["ratio_vs_bare_inference"], r["end_to_end_fps"],
                     r.get("reference_fps", "-"), r.get("ratio_vs_reference", "-")] +
                    [r["stage_ms"][s] for s in stages] + [counts, reference or "-"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in [head] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    print(f"detector {report['detector']}, {report['threads']} threads, motion skip "
          f"{'on' if report['results'] and report['results'][0]['motion_skip'] else 'off'} "
          f"in e2e (every-frame: off), peak RSS {report['peak_rss_mb']} MB; targets "
          f"e2e/ref >= {report['targets']['ratio_vs_reference']}, every/infer >= "
          f"{report['targets']['ratio_vs_bare_inference']}")
    for r in report.get("cheaper_frames", []):
        counts = "; ".join(f"{v['in']}/{v['out']}" for v in r["lines"].values())
        print(f"{r['input']:34} {r['variant']:28} {r['end_to_end_fps']:7} fps "
              f"{r['cpu_seconds']:6} cpu s  detector skipped {r['detector_skipped']:4}  "
              f"in/out {counts}")
    for r in report.get("demographics", []):
        print(f"demographics on {r['input']}: {r['end_to_end_fps']} fps, "
              f"+{r['demographics_ms_per_frame']} ms/frame, {r['visitors']} visitors, "
              f"{r['face_inferences_per_visitor']} face looks and "
              f"{r['demographics_ms_per_visitor']} ms per visitor")
    _print_new(report)


def _print_new(report: dict) -> None:
    t = report["targets"]
    m = report.get("motion_cpu")
    if m:
        print(f"motion skip CPU: quiet {m['quiet_cpu_ms_per_frame']} ms/frame "
              f"({m['quiet_frames']} frames), busy {m['busy_cpu_ms_per_frame']} ms/frame "
              f"({m['busy_frames']} frames), quiet/busy {m['quiet_over_busy']} "
              f"(target <= {t['quiet_over_busy']}); motion skip off: quiet "
              f"{m['quiet_cpu_ms_per_frame_skip_off']}, busy "
              f"{m['busy_cpu_ms_per_frame_skip_off']} ms/frame")
    m = report.get("motion_cpu_5fps")
    if m:
        print(f"motion skip CPU at {m['fps']} fps: quiet {m['quiet_cpu_ms_per_frame']} ms/frame "
              f"({m['quiet_frames']} frames), busy {m['busy_cpu_ms_per_frame']} ms/frame, "
              f"quiet/busy {m['quiet_over_busy']}; motion skip off: quiet "
              f"{m['quiet_cpu_ms_per_frame_skip_off']}, busy "
              f"{m['busy_cpu_ms_per_frame_skip_off']} ms/frame")
    for r in report.get("precision", []):
        q = r.get("quantize")
        flag = ""
        if q:
            flag = f"  agreement {q['agreement']} count MAE {q['count_mae']} vs float" + \
                (f", FORCED past the bounds ({q['refused']})" if q["forced"] else "")
        counts = "; ".join(f"{c['in']}/{c['out']}" for c in r["counts"].values())
        print(f"{r['backend']:16} {r['model']:27} infer {r['inference_fps']:7} fps  e2e "
              f"{r['end_to_end_fps']:7} fps  {r['cpu_ms_per_frame']:6} cpu ms/frame  "
              f"in/out {counts} ({r['count_errors']} off truth)  Mall MAE "
              f"{r['mall_count_mae']} ({r['mall_frames']} frames){flag}")
    soak = report.get("soak")
    if soak:
        print(f"soak: {soak['frames']} frames, motion skip off, {soak['fps']} fps, RSS "
              f"{soak['rss_mb_at_2000']} MB at frame {soak['baseline_frame']}, "
              f"{soak['rss_mb_at_20000']} MB at {soak['final_frame']}: growth "
              f"{soak['rss_growth']} (target <= {t['rss_growth']}); peak RSS "
              f"{soak['peak_rss_mb']} MB (target <= {t['peak_rss_mb']})")
    print("bench seconds: " + ", ".join(f"{name} {v['wall']} wall / {v['cpu']} cpu"
                                        for name, v in report["bench_seconds"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.lab.bench",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
