"""Static INT8 quantisation of an ONNX model, checked against the float model before it is kept.

    .venv/bin/python -m appliance.lab.quantize MODEL.onnx --calibrate CLIP_OR_DIR --out OUT.onnx \\
        [--model-kind yolox|fastestdet|age|rfb320] [--frames 100] [--check-frames 100] \\
        [--max-count-mae 0.5] [--min-agreement 0.9] [--max-age-mae 1.5] [--json report.json]
        [--force]

1. Frames are sampled evenly from a clip (or a folder of images) and split, interleaved, into
   a calibration set and a disjoint check set. They are decoded with OpenCV into memory and
   never written anywhere: the only file this tool writes is the output model (and the JSON
   report when asked for one).
2. Each calibration frame goes through the appliance's own pre-processing for that model
   (`appliance.device.detect.person` for the person detectors, `AgeGenderModel.crop` and its mirror
   image for the age model, `Rfb320Detector` for RFB-320), so the activation ranges are those
   of the tensors the appliance really feeds.
3. `quant_pre_process` (shape inference, graph optimisation; opset raised to 13 for
   per-channel scales), then `quantize_static` in QDQ format: activations uint8, weights
   int8. Per kind, as measured better with this very check (see KINDS): per-channel or
   per-tensor weights, 7-bit weights (no int16 saturation in x86 AVX2 kernels) or 8-bit, and
   the first few convolutions (the stem) kept in float; the decoding tail before the outputs
   (concatenations of box offsets with probabilities, sigmoids, softmax) always stays float.
   Needs the `onnx` package beside onnxruntime.
4. Accuracy of the INT8 model against the float one on the check frames, through the same
   post-processing: for detectors the per-frame count MAE at score 0.5 and the detection
   agreement (share of float boxes matched one-to-one by an INT8 box at IoU >= 0.5 and the
   other way round; `agreement` is the lower of the two); for age the mean absolute
   difference in years (crop and mirror averaged, as the appliance estimates).
5. Speed: both models in this process, 2 threads, on the same check tensors, alternately;
   the median of --runs runs each.

A model that breaks a bound is not written: `quantize: refused: ...`, exit status 1. The model
is quantised into a temporary file beside OUT and renamed to OUT only once it has passed.
With --force (for measuring, e.g. `shopper-edge bench`; never for a device) it is written
anyway, flagged: `forced: true` in the report and `quantize: warning: forced past the bounds:
...` on stderr, exit status 0.
Errors (missing model, unreadable clip, empty folder, unknown kind) are one line,
`quantize: error: ...`, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # as the appliance: no warnings on stderr

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from appliance.device.detect.detections import box_iou  # noqa: E402
from appliance.device.detect.faces import AgeGenderModel, Face, Rfb320Detector  # noqa: E402
from appliance.device.detect.person import build_detector  # noqa: E402
from appliance.device.inference.backend import OnnxBackend  # noqa: E402
from appliance.errors import ApplianceError  # noqa: E402

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MATCH_IOU = 0.5
NMS_IOU = 0.45  # the appliance's default (detection.nms_iou)


class QuantizeError(Exception):
    """A problem with the inputs: printed as one line, exit status 2."""


@dataclass(frozen=True)
class Kind:
    """A model kind and its quantisation settings, each chosen by measurement on this x86
    development machine (AVX2, no VNNI) with this tool's own check; see docs in KINDS."""

    name: str
    family: str  # "detector", "faces" or "age"
    per_channel: bool  # one weight scale per output channel rather than per tensor
    reduce_range: bool  # 7-bit weights: no int16 saturation in x86 AVX2 U8S8 kernels
    float_stem: int  # leading convolutions kept in float (see _prepare)
    detector: str = ""  # appliance.device.detect.person name, for person detectors
    check_score: float = 0.5  # detections at or above this score are compared
    input_hw: tuple[int, int] | None = None  # a fixed input the model must have


KINDS = {
    # Mall frames, 30 + 30: all in INT8 agreement 0.63 (count MAE 4.4); first 4 convs in
    # float 0.93, first 6 0.95 (MAE 0.67); per tensor 0.42; 7-bit weights worse with the stem.
    "yolox": Kind("yolox", "detector", per_channel=True, reduce_range=False, float_stem=6,
                  detector="yolox_nano"),
    # Mall frames, 50 + 50: agreement 0.88 all INT8, 0.90 with the first conv in float;
    # per tensor 0.14, full-range weights 0.21.
    "fastestdet": Kind("fastestdet", "detector", per_channel=True, reduce_range=True,
                       float_stem=1, detector="fastestdet"),
    # UTKFace, 50 + 50: age MAE 1.03 years per tensor with 7-bit weights (0.94 on 100 +
    # 100), 1.36 full range, 2.77 per channel (1.51 with 7-bit weights); the first two convs
    # in float gave 1.34 on 50 + 50 and 0.87 on 100 + 100: no steady gain.
    "age": Kind("age", "age", per_channel=False, reduce_range=True, float_stem=0,
                input_hw=(112, 112)),
    # UTKFace, 50 + 50 (faces at score 0.7, the appliance's floor): agreement 0.94 per
    # channel, 0.72 per tensor, 0.32 full range; 0.98 with the first two convs in float.
    "rfb320": Kind("rfb320", "faces", per_channel=True, reduce_range=True, float_stem=2,
                   check_score=0.7, input_hw=(240, 320)),
}
NAME_HINTS = (("yolox", "yolox"), ("fastestdet", "fastestdet"), ("age", "age"),
              ("rfb", "rfb320"))


# ---------------------------------------------------------------- frames, in memory only

def split(total: int, calibrate: int, check: int) -> tuple[list[int], list[int]]:
    """Evenly spread, disjoint frame indices: (calibration, check), interleaved."""
    if total < calibrate + check:  # fewer frames than asked for: keep the proportion
        calibrate = max(1, min(total - 1, round(total * calibrate / (calibrate + check))))
        check = total - calibrate
    wanted = calibrate + check
    picks = np.linspace(0, total - 1, wanted).round().astype(int)
    chosen = set(np.linspace(0, wanted - 1, calibrate).round().astype(int).tolist())
    calib = [int(picks[i]) for i in range(wanted) if i in chosen]
    rest = [int(picks[i]) for i in range(wanted) if i not in chosen]
    return calib, rest


def read_frames(source: Path, calibrate: int, check: int,
                images_only: bool = False) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """(calibration frames, check frames, description) from a clip or a folder of images."""
    if source.is_dir():
        paths = sorted(p for p in source.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if len(paths) < 2:
            raise QuantizeError(f"{source}: {'no' if not paths else 'only one'} image "
                                f"({', '.join(IMAGE_SUFFIXES)}) in it; at least 2 are needed")
        calib, rest = split(len(paths), calibrate, check)

        def load(index: int) -> np.ndarray:
            image = cv2.imread(str(paths[index]), cv2.IMREAD_COLOR)
            if image is None:
                raise QuantizeError(f"{paths[index]}: not a readable image")
            return image

        return ([load(i) for i in calib], [load(i) for i in rest],
                f"{len(paths)} images in {source}")
    if not source.exists():
        raise QuantizeError(f"{source}: no such clip or folder")
    if images_only:
        raise QuantizeError(f"{source}: the age model calibrates on a folder of face crops "
                            "(UTKFace style), not on a video")
    total = _count_frames(source)
    calib, rest = split(total, calibrate, check)
    wanted = {i: "calib" for i in calib} | {i: "check" for i in rest}
    frames: dict[str, list[np.ndarray]] = {"calib": [], "check": []}
    capture = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG)
    try:
        for index in range(max(wanted) + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    frames[wanted[index]].append(frame)
    finally:
        capture.release()
    if not frames["calib"] or not frames["check"]:
        raise QuantizeError(f"{source}: frames could not be decoded")
    return frames["calib"], frames["check"], f"{total} frames of {source}"


def _count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            raise QuantizeError(f"{path}: cannot open as a video (unknown or corrupt format)")
        total = 0
        while capture.grab():  # the container's frame count is unreliable (MPEG-1)
            total += 1
    finally:
        capture.release()
    if total < 2:
        raise QuantizeError(f"{path}: {total} decodable frame(s); at least 2 are needed")
    return total


# ---------------------------------------------------------------- the models' own tensors

class Recorder:
    """A back-end that keeps a copy of each input tensor it is given (in memory)."""

    def __init__(self, backend):
        self.backend = backend
        self.input_shape = backend.input_shape
        self.seen: list[np.ndarray] = []

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        self.seen.append(tensor.copy())
        return self.backend.run(tensor)


def whole(image: np.ndarray) -> Face:
    """A face crop (UTKFace style) is its own face box."""
    return Face((0.0, 0.0, float(image.shape[1]), float(image.shape[0])), 1.0)


def calibration_tensors(kind: Kind, backend: OnnxBackend,
                        frames: list[np.ndarray]) -> list[np.ndarray]:
    if kind.family == "detector":
        detector = build_detector(kind.detector, backend, kind.check_score, NMS_IOU)
        tensors = [detector.preprocess(frame)[0].copy() for frame in frames]
        detector.forget()
        return tensors
    recorder = Recorder(backend)
    if kind.family == "age":
        model = AgeGenderModel(recorder)  # crop + mirror image, as the appliance estimates
        for image in frames:
            model.estimate(image, whole(image))
    else:
        detector = Rfb320Detector(recorder)
        for frame in frames:
            detector.detect(frame)
    return recorder.seen


def matched(a: np.ndarray, b: np.ndarray) -> int:
    """Boxes of a and b paired one-to-one (greedy, best IoU first) at IoU >= MATCH_IOU."""
    iou = box_iou(a, b)
    pairs = 0
    while iou.size and iou.max() >= MATCH_IOU:
        i, j = np.unravel_index(int(np.argmax(iou)), iou.shape)
        iou[i, :] = -1
        iou[:, j] = -1
        pairs += 1
    return pairs


def compare(kind: Kind, float_backend: OnnxBackend, int8_backend: OnnxBackend,
            frames: list[np.ndarray]) -> tuple[dict, list[np.ndarray]]:
    """Accuracy of INT8 against float on the check frames, and the tensors they were fed."""
    if kind.family == "age":
        recorder = Recorder(float_backend)
        reference, candidate = AgeGenderModel(recorder), AgeGenderModel(int8_backend)
        differences, genders_same = [], 0
        for image in frames:
            a = reference.estimate(image, whole(image))
            b = candidate.estimate(image, whole(image))
            differences.append(abs(a.age - b.age))
            genders_same += (a.female >= 0.5) == (b.female >= 0.5)
        return ({"age_mae": round(float(np.mean(differences)), 4),
                 "age_max_difference": round(float(np.max(differences)), 4),
                 "gender_agreement": round(genders_same / len(frames), 4)}, recorder.seen)

    if kind.family == "detector":
        reference = build_detector(kind.detector, float_backend, kind.check_score, NMS_IOU)
        candidate = build_detector(kind.detector, int8_backend, kind.check_score, NMS_IOU)
        tensors = []

        def both(frame):
            tensor, box = reference.preprocess(frame)
            tensor = tensor.copy()
            tensors.append(tensor)
            return (reference.postprocess(float_backend.run(tensor), box).xyxy,
                    candidate.postprocess(int8_backend.run(tensor), box).xyxy)
    else:
        recorder = Recorder(float_backend)
        reference = Rfb320Detector(recorder, min_score=kind.check_score)
        candidate = Rfb320Detector(int8_backend, min_score=kind.check_score)
        tensors = recorder.seen

        def both(frame):
            return tuple(np.array([f.xyxy for f in faces], np.float32).reshape(-1, 4)
                         for faces in (reference.detect(frame), candidate.detect(frame)))

    count_errors, pairs, float_boxes, int8_boxes = [], 0, 0, 0
    for frame in frames:
        a, b = both(frame)
        count_errors.append(abs(len(a) - len(b)))
        pairs += matched(a, b)
        float_boxes += len(a)
        int8_boxes += len(b)
    if kind.family == "detector":
        reference.forget()
    float_share = pairs / float_boxes if float_boxes else 1.0
    int8_share = pairs / int8_boxes if int8_boxes else 1.0
    return ({"count_mae": round(float(np.mean(count_errors)), 4),
             "agreement": round(min(float_share, int8_share), 4),
             "agreement_float_in_int8": round(float_share, 4),
             "agreement_int8_in_float": round(int8_share, 4),
             "float_boxes": float_boxes, "int8_boxes": int8_boxes,
             "score": kind.check_score, "iou": MATCH_IOU}, tensors)


def median_ms(backends: dict[str, OnnxBackend], tensors: list[np.ndarray],
              runs: int) -> dict[str, float]:
    """Median milliseconds per inference of each back-end on the same tensors, alternating
    between them so that a busy moment of the machine falls on both."""
    for backend in backends.values():  # warm-up: first runs allocate
        for tensor in tensors[:3]:
            backend.run(tensor)
    times: dict[str, list[float]] = {name: [] for name in backends}
    for index in range(runs):
        tensor = tensors[index % len(tensors)]
        for name, backend in backends.items():
            started = time.perf_counter()
            backend.run(tensor)
            times[name].append(time.perf_counter() - started)
    return {name: round(1000 * statistics.median(values), 3) for name, values in times.items()}


# ---------------------------------------------------------------- quantisation

class Reader:
    """onnxruntime's CalibrationDataReader over tensors held in memory."""

    def __init__(self, input_name: str, tensors: list[np.ndarray]):
        self.input_name = input_name
        self.tensors = tensors
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        tensor = next(self._iter, None)
        return None if tensor is None else {self.input_name: tensor}

    def rewind(self) -> None:
        self._iter = iter(self.tensors)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed


def quantize(model: Path, out: Path, input_name: str, tensors: list[np.ndarray],
             per_channel: bool, method: str, reduce_range: bool, float_tail: int,
             float_stem: int) -> list[str]:
    """Quantise; returns the names of the nodes kept in float (the output tail)."""
    from onnxruntime import quantization as oq
    from onnxruntime.quantization.shape_inference import quant_pre_process

    oq.CalibrationDataReader.register(Reader)
    methods = {"minmax": oq.CalibrationMethod.MinMax, "entropy": oq.CalibrationMethod.Entropy,
               "percentile": oq.CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory(prefix="quantize-") as work:
        prepared = Path(work) / "prepared.onnx"
        # ONNX shape inference and onnxruntime's graph optimisation; the symbolic shape
        # inference (which needs sympy) adds nothing for these fixed-size inputs.
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        kept = _prepare(prepared, float_tail, float_stem)
        oq.quantize_static(str(prepared), str(out), Reader(input_name, tensors),
                           quant_format=oq.QuantFormat.QDQ, per_channel=per_channel,
                           reduce_range=reduce_range, activation_type=oq.QuantType.QUInt8,
                           weight_type=oq.QuantType.QInt8, calibrate_method=methods[method],
                           nodes_to_exclude=kept)
    return kept


# Ops that only move, join or squash values: walking back from the outputs through these
# finds the decoding tail, which mixes ranges (box offsets beside 0-1 probabilities in one
# Concat, so one uint8 scale for both) and costs little in float.
TAIL_OPS = {"Concat", "Reshape", "Transpose", "Sigmoid", "Softmax", "Flatten", "Squeeze",
            "Unsqueeze", "Slice", "Split", "Gather", "Identity", "Exp", "Mul", "Add"}
COMPUTE_OPS = {"Conv", "Gemm", "MatMul", "ConvTranspose"}


def _prepare(path: Path, float_tail: int, float_stem: int = 0) -> list[str]:
    """Opset 13 at least (per-channel DequantizeLinear needs its `axis`: YOLOX and FastestDet
    are opset 11, RFB-320 opset 9), a unique name on every node (face-api's graph has none,
    and the quantiser keys its per-node choices by name); returns the nodes to keep in float:
    with float_tail >= 1 the decoding tail before the outputs, with 2 also the layers that
    compute it (the head's last convolutions); with float_stem = N the nodes before the
    (N+1)-th convolution (the stem, whose folded batch norms give channels of wildly
    different ranges that one uint8 scale per tensor cannot hold)."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(path))
    changed = False
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset < 13:
        model = version_converter.convert_version(model, 13)
        changed = True
    names = [node.name for node in model.graph.node]
    if "" in names or len(set(names)) != len(names):
        for index, node in enumerate(model.graph.node):
            node.name = f"{node.op_type}_{index}_{node.output[0]}"
        changed = True
    if changed:
        onnx.save(model, str(path))
    kept: dict[str, None] = {}
    convolutions = 0
    for node in model.graph.node:  # graph order is topological
        if node.op_type in COMPUTE_OPS:
            convolutions += 1
        if convolutions > float_stem:
            break
        kept[node.name] = None
    if float_tail < 1:
        return list(kept)
    producer = {output: node for node in model.graph.node for output in node.output}
    todo = [o.name for o in model.graph.output]
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in kept:
            continue
        if node.op_type in TAIL_OPS:
            kept[node.name] = None
            todo.extend(node.input)
        elif node.op_type in COMPUTE_OPS and float_tail >= 2:
            kept[node.name] = None
    return list(kept)


# ---------------------------------------------------------------- command line

class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise QuantizeError(message)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog="quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the float ONNX model")
    parser.add_argument("--calibrate", type=Path, required=True, metavar="CLIP_OR_DIR",
                        help="a clip, or a folder of frames (face crops for --model-kind age)")
    parser.add_argument("--out", type=Path, required=True, help="where the INT8 model goes")
    parser.add_argument("--model-kind", help="yolox, fastestdet, age or rfb320 "
                        "(default: from the model's file name)")
    parser.add_argument("--frames", type=int, default=100, help="calibration frames (100)")
    parser.add_argument("--check-frames", type=int, default=100,
                        help="other frames for the accuracy check (100)")
    parser.add_argument("--max-count-mae", type=float, default=0.5,
                        help="detectors: most per-frame count MAE allowed (0.5)")
    parser.add_argument("--min-agreement", type=float, default=0.9,
                        help="detectors: least detection agreement allowed (0.9)")
    parser.add_argument("--max-age-mae", type=float, default=1.5,
                        help="age: most mean absolute age difference allowed, years (1.5)")
    parser.add_argument("--per-channel", choices=("auto", "on", "off"), default="auto",
                        help="per-channel weight scales (auto: the measured best per kind)")
    parser.add_argument("--method", choices=("minmax", "entropy", "percentile"),
                        default="minmax", help="calibration method (minmax)")
    parser.add_argument("--reduce-range", choices=("auto", "on", "off"), default="auto",
                        help="7-bit weights, against U8S8 saturation on x86 without VNNI "
                        "(auto: the measured best per kind)")
    parser.add_argument("--float-stem", type=int, metavar="N",
                        help="keep the first N convolutions in float (default: per kind)")
    parser.add_argument("--threads", type=int, default=2, help="inference threads (2)")
    parser.add_argument("--runs", type=int, default=100,
                        help="timed runs per model; the median is reported (100)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--force", action="store_true",
                        help="write the model even if it breaks a bound (flagged; for "
                        "measuring only, never for a device)")
    args = parser.parse_args(argv)
    for name in ("frames", "check_frames", "threads", "runs"):
        if getattr(args, name) < 1:
            raise QuantizeError(f"--{name.replace('_', '-')} must be at least 1")
    return args


def kind_of(args: argparse.Namespace) -> Kind:
    if args.model_kind is None:
        stem = args.model.name.lower()
        names = [kind for hint, kind in NAME_HINTS if hint in stem]
        if len(names) != 1:
            raise QuantizeError(f"{args.model}: cannot tell the model kind from its name; "
                                f"pass --model-kind ({', '.join(KINDS)})")
        return KINDS[names[0]]
    if args.model_kind not in KINDS:
        raise QuantizeError(f"unknown --model-kind {args.model_kind!r}; "
                            f"one of {', '.join(KINDS)}")
    return KINDS[args.model_kind]


def check_input(kind: Kind, backend: OnnxBackend, model: Path) -> None:
    shape = backend.input_shape
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]) or shape[1] != 3:
        raise QuantizeError(f"{model}: input shape {list(shape)} is not a fixed Nx3xHxW "
                            f"image; not a {kind.name} model")
    if kind.input_hw and tuple(shape[2:]) != kind.input_hw:
        raise QuantizeError(f"{model}: input {shape[2]}x{shape[3]} is not the {kind.name} "
                            f"model's {kind.input_hw[0]}x{kind.input_hw[1]}")


def run(args: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict, str | None]:
    """Quantise, check, time; returns the report and the reason for refusal (or None)."""
    if not args.model.is_file():
        raise QuantizeError(f"{args.model}: no such model file")
    kind = kind_of(args)
    if not args.out.parent.is_dir():
        raise QuantizeError(f"{args.out.parent}: no such folder for --out")
    if args.out.resolve() == args.model.resolve():
        raise QuantizeError("--out must not be the float model itself")
    try:
        import onnx  # noqa: F401  (onnxruntime.quantization needs it)
    except ImportError:
        raise QuantizeError("the onnx package is needed for quantisation: "
                            "pip install onnx") from None
    float_backend = OnnxBackend(args.model, args.threads)
    check_input(kind, float_backend, args.model)
    calib_frames, check_frames, described = read_frames(
        args.calibrate, args.frames, args.check_frames, images_only=kind.family == "age")
    per_channel = kind.per_channel if args.per_channel == "auto" else args.per_channel == "on"
    reduce_range = kind.reduce_range if args.reduce_range == "auto" \
        else args.reduce_range == "on"
    float_stem = kind.float_stem if args.float_stem is None else args.float_stem
    say(f"quantize: {args.model.name} ({kind.name}): calibrating on {len(calib_frames)} and "
        f"checking on {len(check_frames)} other frames of {described}")

    used = {"calibration_frames": len(calib_frames), "check_frames": len(check_frames)}
    tensors = calibration_tensors(kind, float_backend, calib_frames)
    del calib_frames
    fd, tmp_name = tempfile.mkstemp(prefix=f".{args.out.name}.", suffix=".tmp",
                                    dir=args.out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        started = time.perf_counter()
        kept = quantize(args.model, tmp, float_backend.input_name, tensors, per_channel,
                        args.method, reduce_range, 1, float_stem)
        quantize_s = time.perf_counter() - started
        del tensors
        int8_backend = OnnxBackend(tmp, args.threads)
        figures, check_tensors = compare(kind, float_backend, int8_backend, check_frames)
        del check_frames
        speed = median_ms({"float": float_backend, "int8": int8_backend}, check_tensors,
                          args.runs)
        report = {
            "model": str(args.model), "kind": kind.name, "out": str(args.out),
            "calibration_source": str(args.calibrate), **used, "method": args.method,
            "format": "QDQ", "activations": "uint8", "weights": "int8",
            "per_channel": per_channel, "reduce_range": reduce_range,
            "float_stem": float_stem, "float_nodes": len(kept),
            "threads": args.threads, "runs": args.runs,
            "float_ms": speed["float"], "int8_ms": speed["int8"],
            "speed_ratio": round(speed["float"] / speed["int8"], 3),
            "float_mb": round(args.model.stat().st_size / 1e6, 3),
            "int8_mb": round(tmp.stat().st_size / 1e6, 3),
            "quantize_s": round(quantize_s, 2),
            **figures,
        }
        refusal = refused(kind, report, args)
        report["bounds"] = bounds_of(kind, args)
        report["written"] = refusal is None or args.force
        report["refused"] = refusal
        report["forced"] = refusal is not None and args.force
        if report["written"]:
            tmp.chmod(0o644)
            tmp.replace(args.out)
        return report, refusal
    finally:
        tmp.unlink(missing_ok=True)


def bounds_of(kind: Kind, args: argparse.Namespace) -> dict:
    if kind.family == "age":
        return {"max_age_mae": args.max_age_mae}
    return {"max_count_mae": args.max_count_mae, "min_agreement": args.min_agreement}


def refused(kind: Kind, report: dict, args: argparse.Namespace) -> str | None:
    broken = []
    if kind.family == "age":
        if report["age_mae"] > args.max_age_mae:
            broken.append(f"age MAE {report['age_mae']:.4g} years > --max-age-mae "
                          f"{args.max_age_mae:g}")
    else:
        if report["count_mae"] > args.max_count_mae:
            broken.append(f"count MAE {report['count_mae']:.4g} > --max-count-mae "
                          f"{args.max_count_mae:g}")
        if report["agreement"] < args.min_agreement:
            broken.append(f"agreement {report['agreement']:.4g} < --min-agreement "
                          f"{args.min_agreement:g}")
    return "; ".join(broken) or None


def table(report: dict) -> str:
    width = max(len(Path(report["model"]).name), len(Path(report["out"]).name), 10)
    rows = [f"{'model':<{width}}  {'precision':<9}  {'ms/inference':>12}  {'size MB':>8}",
            f"{Path(report['model']).name:<{width}}  {'float32':<9}  "
            f"{report['float_ms']:>12.3f}  {report['float_mb']:>8.3f}",
            f"{Path(report['out']).name:<{width}}  {'int8 QDQ':<9}  "
            f"{report['int8_ms']:>12.3f}  {report['int8_mb']:>8.3f}",
            f"speed ratio (float ms / int8 ms): {report['speed_ratio']:.2f}x; "
            f"{report['threads']} threads, median of {report['runs']} runs, same tensors",
            f"settings: QDQ uint8/int8, {'per-channel' if report['per_channel'] else 'per-tensor'}"
            f" weights, {'7-bit' if report['reduce_range'] else '8-bit'} weights, "
            f"{report['method']} calibration on {report['calibration_frames']} frames, first "
            f"{report['float_stem']} conv(s) and the output tail in float "
            f"({report['float_nodes']} nodes)"]
    if "age_mae" in report:
        rows.append(f"age MAE int8 vs float: {report['age_mae']:.3f} years "
                    f"(max {report['age_max_difference']:.3f}; bound "
                    f"{report['bounds']['max_age_mae']:g}); gender agreement "
                    f"{report['gender_agreement']:.3f}; on {report['check_frames']} faces")
    else:
        rows.append(f"count MAE int8 vs float: {report['count_mae']:.3f} (bound "
                    f"{report['bounds']['max_count_mae']:g}); agreement "
                    f"{report['agreement']:.3f} (bound {report['bounds']['min_agreement']:g}; "
                    f"float boxes found by int8 {report['agreement_float_in_int8']:.3f}, "
                    f"int8 boxes found by float {report['agreement_int8_in_float']:.3f}; "
                    f"score >= {report['score']:g}, IoU >= {report['iou']:g}) on "
                    f"{report['check_frames']} frames")
    rows.append(f"{report['out']}: " + ("not written" if not report["written"] else
                                        "written, FORCED past the bounds (measuring only)"
                                        if report.get("forced") else "written"))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization logs at root
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
        args = parse(argv)
        report, refusal = run(args, lambda line: print(line, flush=True))
    except (QuantizeError, ApplianceError) as error:
        print(f"quantize: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # onnxruntime and onnx raise their own untyped errors
        print(f"quantize: error: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        return 2
    print(table(report))
    if args.json:
        try:
            args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            print(f"quantize: error: {args.json}: {error.strerror}", file=sys.stderr)
            return 2
    if refusal and args.force:
        print(f"quantize: warning: forced past the bounds: {refusal}; {args.out} written "
              "for measuring only", file=sys.stderr)
    elif refusal:
        print(f"quantize: refused: {refusal}; {args.out} not written", file=sys.stderr)
        return 1
    return 0


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:397] + "..."


if __name__ == "__main__":
    sys.exit(main())
