"""The README's dashboard pictures, taken from `smartbins demo --serve` (the demo city) in
Debian's chromium: the map, and a driver's route sheet on a phone (Danish, one stop done).

Run: PYTHONPATH=$PWD .venv/bin/python tests/dashboard/readme_shots.py [OUT_DIR]
(default docs/img). Not a test: it writes files the README shows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "img"
    from playwright.sync_api import sync_playwright

    proc = subprocess.Popen(
        [sys.executable, "-m", "smartbins.cli", "demo", "--serve", "--serve-seconds", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Dashboard: "):
                lines += [proc.stdout.readline(), proc.stdout.readline()]
                break
        base = re.search(r"Dashboard: (http://\S+)/dashboard/", "".join(lines)).group(1)
        token = lines[-1].strip()
        req = urllib.request.Request(base + "/api/v1/municipalities/0101/plans",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            plan = json.loads(r.read())[0]
        truck = max(plan["trucks"], key=lambda t: len(t["stops"]))
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True,
                args=["--no-sandbox"] if os.geteuid() == 0 else [],
            )
            ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="da-DK",
                                      timezone_id="Europe/Copenhagen")
            ctx.add_init_script(f"localStorage.setItem('smartbins.token', {token!r});"
                                "localStorage.setItem('smartbins.language.demo planner', 'en')")
            page = ctx.new_page()
            page.goto(base + "/dashboard/#/map")
            page.wait_for_selector("#map[data-ready='1']")
            page.screenshot(path=out / "dashboard-map.png")
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                        device_scale_factor=2, has_touch=True,
                                        timezone_id="Europe/Copenhagen")
            phone.add_init_script(f"localStorage.setItem('smartbins.token', {token!r});"
                                  "localStorage.setItem('smartbins.language.demo planner', 'da')")
            page = phone.new_page()
            page.goto(f"{base}/dashboard/#/sheet/{plan['id']}/{truck['truck_id']}")
            page.wait_for_selector("#route-sheet li")
            page.locator("#route-sheet li[data-kind='bin'] button.mark").first.click()
            page.wait_for_selector("#route-sheet li[data-done='1']")
            page.wait_for_selector("#toast", state="hidden")
            page.screenshot(path=out / "dashboard-route-sheet.png")
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C: the demo stops everything it started
        proc.wait(60)
    print(f"wrote {out / 'dashboard-map.png'} and {out / 'dashboard-route-sheet.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
