"""`shopper-edge bench` as `make bench` runs it, with small settings on one whole CAVIAR clip:
the counts it reports against the clip's truth, the memory it reports against its target and
the kernel's own figure, the motion-skip CPU split and the precision table. Speeds are never
asserted (the machine is shared); the figures themselves are in docs/performance.md."""

import json
import resource
import subprocess
import sys

from appliance.device.inference.models import fetch, load_manifest
from tests.conftest import CLIPS, DATA, MIRROR, REPO

CLIP = "OneLeaveShop1front.mpg"


def test_bench_reports_soak_motion_cpu_and_precision(write_config, models_dir, tmp_path):
    # The demographics part of the bench needs the face models beside the detectors.
    fetch(str(MIRROR), models_dir, list(load_manifest().values()), log=lambda _msg: None)
    # One whole clip (its counts are comparable with truth.json) and the Mall frames.
    data = tmp_path / "data"
    (data / "caviar_front" / "clips").mkdir(parents=True)
    (data / "caviar_front" / "clips" / CLIP).symlink_to(CLIPS / CLIP)
    (data / "caviar_front" / "truth.json").symlink_to(CLIPS.parent / "truth.json")
    (data / "mall").symlink_to(DATA / "mall")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "appliance.lab.bench", "--config",
         str(write_config(performance={"motion_skip": {"enabled": True}})),
         "--json", str(out), "--data", str(data), "--rounds", "1", "--mall-frames", "2",
         "--soak-frames", "300", "--quantize-frames", "0", "--precision-mall-frames", "2",
         "--yolox-tflite", str(tmp_path / "absent.tflite")],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "soak: 300 frames" in result.stdout and "motion skip CPU" in result.stdout
    report = json.loads(out.read_text())
    truth = json.loads((CLIPS.parent / "truth.json").read_text())[CLIP]

    # The counts target: as configured (motion skip on) and every frame, the appliance
    # counts the clip exactly.
    clip_row, mall_row = report["results"]
    assert clip_row["input"] == CLIP and clip_row["truth"] == {"in": truth[0], "out": truth[1]}
    assert clip_row["lines"] == {"shop_door": clip_row["truth"]}
    assert clip_row["every_frame_lines"] == {"shop_door": clip_row["truth"]}
    for row in report["results"]:
        assert row["motion_skip"] is True
        for key in ("ratio_vs_bare_inference", "ratio_vs_reference"):
            assert isinstance(row[key], float) and row[key] > 0, key

    soak = report["soak"]
    assert soak["frames"] == 300 and soak["motion_skip"] is False
    assert soak["baseline_frame"] == 30 and soak["final_frame"] == 300
    for key in ("rss_mb_at_2000", "rss_mb_at_20000", "peak_rss_mb", "fps"):
        assert isinstance(soak[key], float) and soak[key] > 0, key
    assert soak["peak_rss_mb"] >= soak["rss_mb_at_20000"]
    # The memory target against the measurement, and the measurement against the kernel's
    # own peak of the bench's processes (kB; the soak runs in a child of the bench).
    assert soak["peak_rss_mb"] <= report["targets"]["peak_rss_mb"]
    kernel_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert soak["peak_rss_mb"] <= kernel_peak_mb * 1.01
    assert {int(frame) for frame in soak["rss_mb_by_frame"]} == set(range(0, 301, 30))

    motion = report["motion_cpu"]
    assert motion["quiet_frames"] + motion["busy_frames"] + motion["between_frames"] == 295
    # Someone walks through the clip and the shop is empty part of the time: both kinds.
    assert motion["quiet_frames"] > 0 and motion["busy_frames"] > 0
    assert 0 < motion["quiet_cpu_ms_per_frame"] and 0 < motion["busy_cpu_ms_per_frame"]

    rows = {(r["backend"], r["model"]): r for r in report["precision"]}
    assert ("FP32 ONNX", "yolox_nano") in rows
    assert ("INT8 TFLite", "yolov8n (AGPL, bench only)") in rows
    for row in rows.values():
        assert row["frames"] == 295 and row["mall_frames"] == 2
        for key in ("inference_fps", "end_to_end_fps", "cpu_ms_per_frame", "mall_count_mae"):
            assert isinstance(row[key], float) and row[key] >= 0, key
        assert set(row["counts"]) == {CLIP}
    # The shipped back-end counts exactly; the table's other rows may not (that is its point).
    assert rows["FP32 ONNX", "yolox_nano"]["count_errors"] == 0
    assert report["targets"] == {"ratio_vs_reference": 1.5, "ratio_vs_bare_inference": 0.85,
                                 "peak_rss_mb": 300, "rss_growth": 1.05, "quiet_over_busy": 0.25}
    assert set(report["bench_seconds"]) >= {"precision", "soak"}
