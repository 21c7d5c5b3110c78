"""`make demo`'s script end to end: a server, lottery-writer into SQLite, users drawing,
lottery-exporter; the script's own checks (every count, and /metrics against STATS) must pass
and its summary must print the status page's address and the metrics line count."""
import os
import re
import subprocess
import urllib.request

import pytest

import lottery_helpers as H

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITER = os.path.join(ROOT, "target", "release", "lottery-writer")
EXPORTER = os.environ.get("LOTTERY_EXPORTER", os.path.join(ROOT, "target", "release", "lottery-exporter"))


def test_demo_prints_status_page_and_metrics(tmp_path):
    for b in (WRITER, EXPORTER):
        if not os.access(b, os.X_OK):
            pytest.fail(f"{b} is not built (make build)", pytrace=False)
    server_dir = os.path.dirname(H.REDIS_SERVER) if os.path.isabs(H.REDIS_SERVER) else ""
    env = dict(os.environ, MODULE=H.MODULE_PATH, DEMO_USERS="3000", DEMO_THREADS="2",
               DEMO_DIR=str(tmp_path / "demo"), WRITER=WRITER, EXPORTER=EXPORTER)
    if server_dir:
        env["PATH"] = server_dir + os.pathsep + env["PATH"]
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], env=env,
                       capture_output=True, text=True, timeout=180)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "all matching" in out
    page = re.search(r"status page:\s+(http://127\.0\.0\.1:\d+/)", out)
    lines = re.search(r"metrics:\s+http://127\.0\.0\.1:\d+/metrics\s+\(([\d,]+) lines, ([\d,]+) series\)", out)
    assert page and lines, out[-3000:]
    assert int(lines.group(1).replace(",", "")) > 50
    assert re.search(r"lottery_wins_total [\d,]+ = STATS wins, lottery_draws_total [\d,]+ = STATS draws  ok", out)
    # Everything is stopped on exit: the exporter no longer answers.
    with pytest.raises(OSError):
        urllib.request.urlopen(page.group(1) + "metrics", timeout=2)
