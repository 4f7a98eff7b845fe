"""The lab's commands under `shopper-edge`: eval (accuracy on labelled data) and bench.

Only in a development install: the device wheel does not carry appliance.lab.
"""

from __future__ import annotations

import json
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.lab.bench_options import add_arguments as add_bench_arguments


def add_commands(sub) -> None:
    p = sub.add_parser("eval", help="accuracy on labelled data")
    esub = p.add_subparsers(dest="eval_command", required=True)
    e = esub.add_parser("mot", help="tracker accuracy (MOTA, IDF1) on MOTChallenge data")
    e.add_argument("--truth", required=True, help="gt.txt (MOTChallenge) or CVML .xml")
    group = e.add_mutually_exclusive_group(required=True)
    group.add_argument("--detections", help="public detections (det.txt) to track")
    group.add_argument("--tracks", help="an existing tracker output to score")
    e.add_argument("--frame-offset", type=int, default=0,
                   help="add N to truth frame numbers (PETS/ETH XML: 1)")
    e.add_argument("--fps", type=float, default=None,
                   help="frame rate of the sequence (default: seqinfo.ini, else 25)")
    e.add_argument("--high-score", type=float, default=0.8,
                   help="tracker high-score threshold; public detections score high (0.8)")
    e.add_argument("--new-track-score", type=float, default=0.9)
    e.add_argument("--every", type=int, default=1,
                   help="track every Nth frame (a lower rate); scored on those frames")
    e.set_defaults(func=cmd_eval_mot)
    e = esub.add_parser("fragments", help="track ids per true person, before and after "
                        "linking a broken track's fragments (MOTChallenge data)")
    e.add_argument("--truth", required=True, help="gt.txt (MOTChallenge) or CVML .xml")
    e.add_argument("--detections", required=True, help="public detections (det.txt)")
    e.add_argument("--frame-offset", type=int, default=0,
                   help="add N to truth frame numbers (PETS/ETH XML: 1)")
    e.add_argument("--fps", type=float, default=None,
                   help="frame rate of the sequence (default: seqinfo.ini, else 25)")
    e.add_argument("--high-score", type=float, default=0.8)
    e.add_argument("--new-track-score", type=float, default=0.9)
    e.set_defaults(func=cmd_eval_fragments)
    e = esub.add_parser("lines", help="line-counting accuracy on MOTChallenge data: public "
                        "detections through the tracker and counter, truth from the "
                        "ground-truth foot points")
    e.add_argument("--truth", required=True, help="gt.txt (MOTChallenge) or CVML .xml")
    e.add_argument("--detections", required=True, help="public detections (det.txt)")
    e.add_argument("--line", required=True, metavar="X1,Y1,X2,Y2",
                   help="the counting segment in pixels; in is to its left unless --in-side")
    e.add_argument("--in-side", metavar="X,Y", help="a point on the in side of the line")
    e.add_argument("--frame-offset", type=int, default=0,
                   help="add N to truth frame numbers (PETS/ETH XML: 1)")
    e.add_argument("--fps", type=float, default=None,
                   help="frame rate of the sequence (default: seqinfo.ini, else 25)")
    rate = e.add_mutually_exclusive_group()
    rate.add_argument("--every", type=int, default=1, help="keep every Nth frame (lower rate)")
    rate.add_argument("--cap", type=float, default=None, metavar="F",
                      help="keep the frames the appliance's rate cap lets through at F frames "
                      "a second (a board's fps cap: uneven gaps where F does not divide the "
                      "sequence's rate)")
    e.add_argument("--high-score", type=float, default=0.8,
                   help="tracker high-score threshold; public detections score high (0.8)")
    e.add_argument("--new-track-score", type=float, default=0.9)
    e.set_defaults(func=cmd_eval_lines)
    e = esub.add_parser("door", help="door counts of recorded clips at every phase of every "
                        "rate and at a starved board's uneven paces")
    e.add_argument("clips", nargs="+", help="clips of the config's first camera")
    e.add_argument("--config", required=True, help="device config (its first camera's first "
                   "line; motion skip is turned off so every run gets fresh detections)")
    e.add_argument("--truth", required=True,
                   help="JSON: each clip's file name -> [in, out, ...]")
    e.add_argument("--paces", type=int, default=300, help="seeded uneven paces per gap range")
    e.add_argument("--gaps", nargs="+", default=["0.12-0.3", "0.08-0.2", "0.04-0.12"],
                   metavar="LOW-HIGH", help="seconds between processed frames")
    e.set_defaults(func=cmd_eval_door)
    e = esub.add_parser("age", help="age and gender accuracy on labelled face crops")
    e.add_argument("directory", help="UTKFace-style crops: {age}_{gender}_*.jpg")
    e.add_argument("--face-size", type=int, metavar="PX",
                   help="first shrink each crop to PX x PX and JPEG it at quality 40 (CCTV)")
    e.add_argument("--detector", choices=("yunet", "rfb320", "blazeface"), default="yunet")
    e.add_argument("--models", default="var/models", help="models directory")
    e.add_argument("--limit", type=int, help="only the first N crops (sorted by name)")
    e.set_defaults(func=cmd_eval_age)
    e = esub.add_parser("groups", help="companion detection (pairwise and group F1) on "
                        "ETH/UCY-style trajectories")
    e.add_argument("directory", help="holds obsmat.txt (frame, id, x, z, y, ... in metres) "
                   "and groups.txt (one group of ids per line)")
    e.set_defaults(func=cmd_eval_groups)
    e = esub.add_parser("occupancy", help="people-count accuracy (MAE, bias) and fps on "
                        "still frames")
    e.add_argument("frames", help="folder of frames (.jpg, .png, ...)")
    e.add_argument("--truth", required=True, help="CSV with frame and count columns")
    e.add_argument("--roi", help="mask image: people count when their head is on white")
    e.add_argument("--models", default="var/models", help="models directory")
    e.add_argument("--detector", choices=("yolox_nano", "fastestdet"), default="yolox_nano")
    e.add_argument("--tiles", type=int, nargs=2, metavar=("COLS", "ROWS"), default=[2, 2])
    e.add_argument("--count-score", type=float, default=0.1)
    e.add_argument("--every", type=int, default=1, help="every Nth frame (sorted by name)")
    e.add_argument("--threads", type=int, default=2)
    e.set_defaults(func=cmd_eval_occupancy)

    p = sub.add_parser("bench", help="per-stage timings and fps on the shared clips")
    add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)


def cmd_eval_mot(args) -> int:
    from appliance.device.track.tracker import Tracker
    from appliance.device.track.tracker_config import TrackerConfig
    from appliance.lab.eval.mot import (
        evaluate,
        kept_frames,
        load_sequence,
        sequence_fps,
        track_sequence,
    )

    truth = load_sequence(args.truth, truth=True, frame_offset=args.frame_offset)
    if args.tracks:
        hypotheses = load_sequence(args.tracks)
    else:
        every = _every(args.every)
        fps = args.fps or sequence_fps(args.detections)
        config = TrackerConfig(high_score=args.high_score, new_track_score=args.new_track_score)
        detections = load_sequence(args.detections)
        hypotheses = track_sequence(detections, fps, Tracker(config), every)
        truth = kept_frames(truth, detections, every)
    print(json.dumps(evaluate(truth, hypotheses)))
    return 0


def cmd_eval_fragments(args) -> int:
    from appliance.device.track.tracker import Tracker
    from appliance.device.track.tracker_config import TrackerConfig
    from appliance.lab.eval.fragments import ids_per_person
    from appliance.lab.eval.mot import load_sequence, sequence_fps

    truth = load_sequence(args.truth, truth=True, frame_offset=args.frame_offset)
    config = TrackerConfig(high_score=args.high_score, new_track_score=args.new_track_score)
    fps = args.fps or sequence_fps(args.detections)
    print(json.dumps(ids_per_person(truth, load_sequence(args.detections), fps,
                                    Tracker(config))))
    return 0


def _numbers(text: str, count: int, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise ApplianceError(f"{option} {text}: expected {count} numbers separated by commas")
    return values


def _every(every: int) -> int:
    if every < 1:
        raise ApplianceError(f"--every {every}: expected a whole number of at least 1")
    return every


def cmd_eval_lines(args) -> int:
    from appliance.device.track.tracker_config import TrackerConfig
    from appliance.lab.eval.lines import evaluate_line
    from appliance.lab.eval.mot import load_sequence, sequence_fps

    x1, y1, x2, y2 = _numbers(args.line, 4, "--line")
    if (x1, y1) == (x2, y2):
        raise ApplianceError(f"--line {args.line}: the two end points are the same")
    in_side = _numbers(args.in_side, 2, "--in-side") if args.in_side else None
    every = _every(args.every)
    if args.cap is not None and not args.cap > 0:
        raise ApplianceError(f"--cap {args.cap:g}: expected frames a second above 0")
    truth = load_sequence(args.truth, truth=True, frame_offset=args.frame_offset)
    detections = load_sequence(args.detections)
    fps = args.fps or sequence_fps(args.detections)
    config = TrackerConfig(high_score=args.high_score, new_track_score=args.new_track_score)
    print(json.dumps(evaluate_line(truth, detections, [(x1, y1), (x2, y2)], in_side, fps,
                                   every, args.cap, config)))
    return 0


def cmd_eval_door(args) -> int:
    import dataclasses

    from appliance.device.config import load_config
    from appliance.device.pipeline import load_detector
    from appliance.lab.eval.door import detect_every_frame, evaluate_door

    gaps = [_gap_range(text) for text in args.gaps]
    if args.paces < 0:
        raise ApplianceError(f"--paces {args.paces}: expected a whole number, 0 or more")
    truth = _door_truth(Path(args.truth), [Path(c).name for c in args.clips])
    for clip in args.clips:
        if not Path(clip).is_file():
            raise ApplianceError(f"{clip}: no such clip")
    config = load_config(args.config)
    if not config.cameras or not config.cameras[0].lines:
        raise ApplianceError(f"{args.config}: the first camera has no line to count")
    # every run must get fresh detections, not the last ones again
    performance = dataclasses.replace(config.performance, motion_skip=dataclasses.replace(
        config.performance.motion_skip, enabled=False))
    config = dataclasses.replace(config, performance=performance)
    detector = load_detector(config)
    recordings = {Path(c).name: detect_every_frame(config, detector, Path(c))
                  for c in args.clips}
    for name, (looks, _) in recordings.items():
        if not looks:
            raise ApplianceError(f"{name}: no frame could be read")
    print(json.dumps(evaluate_door(config, recordings, truth, args.paces, gaps)))
    return 0


def _gap_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split("-"))
    except ValueError:
        low = high = -1.0
    if not 0 < low <= high <= 10:
        raise ApplianceError(f"--gaps {text}: expected LOW-HIGH seconds, 0 < LOW <= HIGH <= 10")
    return low, high


def _door_truth(path: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApplianceError(f"{path}: cannot read the truth ({error})") from None
    truth = {}
    for name in names:
        counts = raw.get(name) if isinstance(raw, dict) else None
        if not isinstance(counts, list) or len(counts) < 2 or \
                not all(isinstance(n, int) and n >= 0 for n in counts[:2]):
            raise ApplianceError(f"{path}: no [in, out, ...] counts for {name}")
        truth[name] = (counts[0], counts[1])
    return truth


def cmd_eval_age(args) -> int:
    import cv2

    from appliance.device.analytics.demographics import FaceLooker
    from appliance.device.detect.faces import FACE_DETECTORS, AgeGenderModel
    from appliance.device.inference.backend import build_backend
    from appliance.device.inference.models import load_manifest, verified_path
    from appliance.lab.eval.age import evaluate

    if args.face_size is not None and not 8 <= args.face_size <= 1024:
        raise ApplianceError(f"--face-size {args.face_size}: expected 8-1024 pixels")
    manifest = load_manifest()

    def backend(name):
        return build_backend(verified_path(Path(args.models), manifest[name]), 2)

    detector = FACE_DETECTORS[args.detector](backend(args.detector))
    # Any face the detector finds counts here: the crops are the test, not a size gate.
    looker = FaceLooker(detector, AgeGenderModel(backend("age_gender")), min_face_px=1)

    def estimate(image):
        # A face crop fills its image; a head region in a frame has surroundings.
        border = image.shape[0] // 2
        return looker.look(cv2.copyMakeBorder(image, border, border, border, border,
                                              cv2.BORDER_CONSTANT, value=0))

    print(json.dumps(evaluate(Path(args.directory), estimate, args.face_size, args.limit)))
    return 0


def cmd_eval_groups(args) -> int:
    from appliance.lab.eval.groups import evaluate_groups

    print(json.dumps(evaluate_groups(Path(args.directory))))
    return 0


def cmd_eval_occupancy(args) -> int:
    from appliance.lab.eval.occupancy import evaluate_occupancy

    if not all(1 <= n <= 4 for n in args.tiles) or args.every < 1 or args.threads < 1:
        raise ApplianceError("--tiles takes 1-4 columns and rows; --every and --threads "
                             "at least 1")
    print(json.dumps(evaluate_occupancy(
        Path(args.frames), Path(args.truth), Path(args.roi) if args.roi else None,
        Path(args.models), detector=args.detector, tiles=tuple(args.tiles),
        count_score=args.count_score, every=args.every, threads=args.threads)))
    return 0


def cmd_bench(args) -> int:
    from appliance.lab.bench import run_bench

    return run_bench(args)
