"""`make bench-hq`'s chain option with small settings: a real PostgreSQL made a small chain
(one store stored through add_batch, the others' store quarter-hours and days, cameras,
statuses and health generated in SQL), the chain report's figures checked against the
stored windows, the JSON and table written. Speeds are never asserted (the machine is
shared); the figures themselves are in docs/hq.md."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_bench_hq_chain_option(tmp_path):
    out = tmp_path / "hq.json"
    result = subprocess.run(
        [sys.executable, "-m", "appliance.lab.bench_hq", "--windows", "0", "--seconds", "0",
         "--report-days", "2.5", "--report-stores", "1", "--chain-stores", "6",
         "--chain-rollup-stores", "2", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "chain, Paris month, report --chain --json" in result.stdout
    chain = json.loads(out.read_text())[-1]
    stored = 8 * round(1440 * 2.5)
    assert chain["stored_windows"] == stored
    assert chain["chain_rows"] == {"windows": stored, "rollups": 2 * 8 * 10 * 24,
                                   "store_quarters": 6 * 10 * 24, "store_days": 6 * 3,
                                   "cameras": 48}
    assert chain["chain_all_stores"] == 6 and chain["chain_all_windows"] == 6 * stored
    # Paris's 2 January: 23:00 UTC on the 1st .. 23:00 on the 2nd
    assert chain["chain_paris_windows"] == 6 * 8 * 1440
    assert chain["store_report_windows"] == stored and chain["dashboard_cameras"] == 48
    assert chain["health_cameras"] == 48
    assert chain["chain_all_command_peak_rss_mib"] > 0
