"""Running a gateway process: the one entry point for `smartbins gateway` and for the workers
a supervisor starts (``python -m gateway --config FILE --worker K --report-fd FD``)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from gateway import config


def run(config_path: Path, worker: int = 0, report_fd: int = -1) -> int:
    """Run until SIGTERM or SIGINT; 0 after a clean stop. With ``[process] workers > 1`` (and
    ``worker`` 0) this process supervises that many worker processes instead."""
    from gateway.service import Gateway, run_forever
    from gateway.workers import report_loop, run_supervisor, worker_config

    cfg = config.load(config_path)
    secrets = config.read_secrets(cfg)
    who = f"[worker {worker}]" if worker else ""
    logging.basicConfig(
        level=cfg.log.level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s{who}: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not worker and cfg.process.workers > 1:
        return 0 if run_supervisor(cfg, config_path, stop) else 1
    if worker:
        cfg = worker_config(cfg, worker)
    gw = Gateway(cfg, secrets)
    if report_fd >= 0:
        out = os.fdopen(report_fd, "w")
        threading.Thread(
            target=report_loop, args=(out, gw.metrics, gw.health, stop),
            name="gateway-report", daemon=True,
        ).start()  # fmt: skip
    return 0 if run_forever(gw, stop) else 1
