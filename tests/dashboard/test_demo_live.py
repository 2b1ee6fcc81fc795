"""`smartbins demo --serve` (what `make demo` runs): after its run the whole system serves the
dashboard, with the next collection's plan and a token to log in with, and stops cleanly by
itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request


def test_demo_serve_leaves_the_system_running_then_stops_cleanly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartbins.cli", "demo", "--bins", "12", "--days", "1",
         "--serve", "--serve-seconds", "15"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    out: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith("Dashboard: "):
                out.append(proc.stdout.readline())
                out.append(proc.stdout.readline())
                break
        text = "".join(out)
        url = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+)/dashboard/", text)
        assert url, text
        base, token = url.group(1), out[-1].strip()
        with urllib.request.urlopen(base + "/dashboard/", timeout=10) as r:
            assert r.status == 200 and b'src="js/main.js"' in r.read()
        req = urllib.request.Request(
            base + "/api/v1/municipalities/0101/plans", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            plans = json.loads(r.read())
        # tomorrow's, or (a stream goes out only when a bin is due) up to the first day with routes
        assert plans and [p for p in plans if p["trucks"]], "a plan with routes"
        assert len([p for p in plans if p["trucks"]]) == 1
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, text + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # every server it started is gone (they all run from its work dir)
    workdir = re.search(r"working in (\S+)", text).group(1)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert workdir not in ps
