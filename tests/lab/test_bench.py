"""`shopper-edge bench` as `make bench` runs it, with tiny settings: the memory soak, the
motion-skip CPU split and the precision table are in the JSON with sane types. Speeds are
never asserted (the machine is shared); the figures themselves are in docs/performance.md."""

import json
import subprocess
import sys

from appliance.device.inference.models import fetch, load_manifest
from tests.conftest import MIRROR, REPO


def test_bench_reports_soak_motion_cpu_and_precision(write_config, models_dir, tmp_path):
    # The demographics part of the bench needs the face models beside the detectors.
    fetch(str(MIRROR), models_dir, list(load_manifest().values()), log=lambda _msg: None)
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "appliance.lab.bench", "--config",
         str(write_config(performance={"motion_skip": {"enabled": True}})),
         "--json", str(out), "--clip-frames", "8", "--mall-frames", "2",
         "--soak-frames", "300", "--quantize-frames", "0", "--precision-mall-frames", "2",
         "--yolox-tflite", str(tmp_path / "absent.tflite")],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "soak: 300 frames" in result.stdout and "motion skip CPU" in result.stdout
    report = json.loads(out.read_text())

    # End to end as configured (motion skip on) against the reference; every frame (motion
    # skip off) against bare inference.
    for row in report["results"]:
        assert row["motion_skip"] is True and "every_frame_lines" in row
        assert row["ratio_vs_bare_inference"] == round(
            row["every_frame_fps"] / row["inference_fps"], 3)
        assert row["ratio_vs_reference"] == round(
            row["end_to_end_fps"] / row["reference_fps"], 3)

    soak = report["soak"]
    assert soak["frames"] == 300 and soak["motion_skip"] is False
    assert soak["baseline_frame"] == 30 and soak["final_frame"] == 300
    for key in ("rss_mb_at_2000", "rss_mb_at_20000", "peak_rss_mb", "fps"):
        assert isinstance(soak[key], float) and soak[key] > 0, key
    assert soak["rss_growth"] == round(soak["rss_mb_at_20000"] / soak["rss_mb_at_2000"], 4)
    assert soak["peak_rss_mb"] >= soak["rss_mb_at_20000"]
    assert {int(frame) for frame in soak["rss_mb_by_frame"]} == set(range(0, 301, 30))

    motion = report["motion_cpu"]
    assert motion["quiet_frames"] + motion["busy_frames"] + motion["between_frames"] == 24
    for key in ("quiet_cpu_ms_per_frame", "busy_cpu_ms_per_frame", "quiet_over_busy"):
        assert motion[key] is None or motion[key] >= 0, key  # 8 frames a clip: maybe no busy one

    rows = {(r["backend"], r["model"]): r for r in report["precision"]}
    assert ("FP32 ONNX", "yolox_nano") in rows
    assert ("INT8 TFLite", "yolov8n (AGPL, bench only)") in rows
    for row in rows.values():
        assert row["frames"] == 24 and row["mall_frames"] == 2
        for key in ("inference_fps", "end_to_end_fps", "cpu_ms_per_frame", "mall_count_mae"):
            assert isinstance(row[key], float) and row[key] >= 0, key
        assert isinstance(row["count_errors"], int)
        assert set(row["counts"]) == {"EnterExitCrossingPaths1front.mpg",
                                      "OneLeaveShop1front.mpg",
                                      "OneLeaveShopReenter1front.mpg"}
    assert report["targets"] == {"ratio_vs_reference": 1.5, "ratio_vs_bare_inference": 0.85,
                                 "peak_rss_mb": 300, "rss_growth": 1.05, "quiet_over_busy": 0.25}
    assert set(report["bench_seconds"]) >= {"precision", "soak"}
