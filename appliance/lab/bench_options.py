"""The options of `shopper-edge bench` and `python -m appliance.lab.bench`, apart from the
bench itself so that building the command line loads no OpenCV or models."""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None)
    parser.add_argument("--json", default="bench-results/bench.json")
    parser.add_argument("--data", default=None, help="shared data folder (default ../shared/data)")
    parser.add_argument("--mall-frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, metavar="N",
                        help="bare / every frame / as configured / reference, in turn, N "
                        "times per input; speeds are the best of the rounds")
    parser.add_argument("--soak-frames", type=int, default=20000, metavar="N",
                        help="frames of the memory soak, a fresh process (0: skip)")
    parser.add_argument("--clip-frames", type=int, default=0, metavar="N",
                        help="only the first N frames of each clip (0: all; quick runs, "
                        "counts then not comparable with truth.json)")
    parser.add_argument("--quantize-frames", type=int, default=50, metavar="N",
                        help="calibration (and as many check) frames for the INT8 ONNX row "
                        "(0: no INT8 ONNX row)")
    parser.add_argument("--precision-mall-frames", type=int, default=20, metavar="N",
                        help="Mall frames for each back-end's count MAE")
    parser.add_argument("--yolox-tflite", type=Path,
                        default=REPO / "var" / "bench-models" /
                        "yolox_nano_full_integer_quant.tflite",
                        help="YOLOX-nano full-INT8 TFLite (onnx2tf; row skipped if absent)")
