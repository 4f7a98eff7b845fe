"""`shopper-edge bench`: where the time goes, on the shared CAVIAR clips and Mall frames.

For each input it measures, in one process and on the same frames (decoded again for each
measurement, so no frame is held and peak RSS is the appliance's own):
- `inference_fps`: the detector's back-end run alone on preprocessed tensors;
- `detector_fps`: preprocess + inference + postprocess (what any detector user pays);
- `end_to_end_fps`: the full appliance loop from the source (decode, detect, track, count,
  window) with its per-stage milliseconds;
- `reference_fps`: the reference pipeline most people would assemble (the same detector,
  `trackers`' ByteTrackTracker, supervision's LineZone; appliance/bench_reference.py) on the
  same frames, with its counts, and `ratio_vs_reference` = end_to_end_fps / reference_fps;
- with demographics on (faces + age on the tracked visitors, default budget): the added
  milliseconds per frame and per visitor, and face inferences per visitor;
and writes everything to a JSON file. Speed figures, never asserted by unit tests.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import replace
from pathlib import Path

import cv2

from appliance.config import load_config
from appliance.pipeline import CameraPipeline, load_demographics, load_detector, run_frames
from appliance.sources import FileSource

REPO = Path(__file__).resolve().parents[1]


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


def _measure(name: str, config, detector, frames_factory, truth=None) -> dict:
    first = next(iter(frames_factory()))[0]
    detector.detect(first)  # warm-up: first-run allocations are not the steady state
    del first
    inference_fps, detector_fps, _ = _detector_rates(detector, frames_factory())
    pipeline = CameraPipeline(config, config.cameras[0], detector, "media")
    started = time.perf_counter()
    run_frames(pipeline, frames_factory(), lambda _doc: None)
    elapsed = time.perf_counter() - started
    result = {
        "input": name,
        "frames": pipeline.times.frames,
        "inference_fps": inference_fps,
        "detector_fps": detector_fps,
        "end_to_end_fps": round(pipeline.times.frames / elapsed, 2),
        "stage_ms": pipeline.times.ms_per_frame(),
        "lines": pipeline.totals(),
        "peak_rss_mb": _peak_rss_mb(),
    }
    result["ratio_vs_bare_inference"] = round(result["end_to_end_fps"] / inference_fps, 3)
    reference = _reference(config, detector, frames_factory)
    if reference is not None:
        result["reference_fps"] = round(reference["frames"] / reference["seconds"], 2)
        result["reference_lines"] = reference["lines"]
        result["ratio_vs_reference"] = round(result["end_to_end_fps"] /
                                             result["reference_fps"], 3)
    if truth is not None:
        result["truth"] = truth
    return result


def _reference(config, detector, frames_factory) -> dict | None:
    try:
        from appliance.bench_reference import run_reference
    except ImportError:
        return None
    camera = config.cameras[0]
    try:
        return run_reference(detector, frames_factory(), camera.lines[0], camera.fps or 25.0)
    except ImportError:  # trackers / supervision not installed: pip install '.[dev]'
        return None


def run_bench(args) -> int:
    data = Path(args.data) if args.data else REPO.parent / "shared" / "data"
    config = load_config(args.config or REPO / "examples" / "caviar-front.yaml")
    detector = load_detector(config)
    results = []
    truth = json.loads((data / "caviar_front" / "truth.json").read_text())
    for clip in sorted((data / "caviar_front" / "clips").glob("*.mpg")):
        entered, left = truth[clip.name][:2]
        results.append(_measure(clip.name, config, detector,
                                lambda clip=clip: FileSource(str(clip), config.cameras[0].fps),
                                {"in": entered, "out": left}))
    demographics = []
    on = replace(config, demographics=replace(config.demographics, enabled=True))
    for clip in sorted((data / "caviar_front" / "clips").glob("*.mpg")):
        demographics.append(_measure_demographics(
            clip.name, on, detector, lambda clip=clip: FileSource(str(clip), on.cameras[0].fps)))
    variants = []
    for clip in sorted((data / "caviar_front" / "clips").glob("*.mpg")):
        variants += _measure_variants(clip.name, config, detector,
                                      lambda clip=clip: FileSource(str(clip),
                                                                   config.cameras[0].fps))
    mall = sorted((data / "mall" / "frames").glob("*.jpg"))[: args.mall_frames]
    if mall:
        results.append(_measure(f"mall/frames ({len(mall)})", config, detector,
                                lambda: _image_frames(mall, 2.0)))
    report = {
        "detector": config.models.detector,
        "threads": config.models.threads,
        "peak_rss_mb": _peak_rss_mb(),
        "results": results,
        "demographics": demographics,
        "cheaper_frames": variants,
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


def _measure_variants(name: str, config, detector, frames_factory) -> list[dict]:
    """The same clip with each switch of cheaper frames: speed, CPU seconds, counts."""
    from appliance.config import MotionConfig, PerformanceConfig

    rows = []
    for label, switches in VARIANTS.items():
        performance = PerformanceConfig(
            decode_thread=switches.get("decode_thread", False),
            motion_skip=MotionConfig(**switches.get("motion_skip", {})))
        variant = replace(config, performance=performance)
        pipeline = CameraPipeline(variant, variant.cameras[0], detector, "media")
        started, cpu = time.perf_counter(), time.process_time()
        run_frames(pipeline, frames_factory(), lambda _doc: None)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows.append({"input": name, "variant": label, "frames": pipeline.times.frames,
                     "end_to_end_fps": round(pipeline.times.frames / elapsed, 2),
                     "cpu_seconds": round(cpu, 2),
                     "detector_skipped": pipeline.motion.skipped if pipeline.motion else 0,
                     "lines": pipeline.totals()})
    return rows


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
    head = ["input", "frames", "infer fps", "det fps", "e2e fps", "e2e/infer", "ref fps",
            "e2e/ref"] + [f"{s} ms" for s in stages] + ["in/out (truth)", "ref in/out"]
    rows = []
    for r in report["results"]:
        counts = "; ".join(f"{v['in']}/{v['out']}" for v in r["lines"].values())
        if "truth" in r:
            counts += f" ({r['truth']['in']}/{r['truth']['out']})"
        reference = "; ".join(f"{v['in']}/{v['out']}"
                              for v in r.get("reference_lines", {}).values())
        rows.append([r["input"], r["frames"], r["inference_fps"], r["detector_fps"],
                     r["end_to_end_fps"], r["ratio_vs_bare_inference"],
                     r.get("reference_fps", "-"), r.get("ratio_vs_reference", "-")] +
                    [r["stage_ms"][s] for s in stages] + [counts, reference or "-"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in [head] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    print(f"detector {report['detector']}, {report['threads']} threads, "
          f"peak RSS {report['peak_rss_mb']} MB")
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
