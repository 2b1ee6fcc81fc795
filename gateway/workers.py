"""``[process] workers = N``: one command, N gateway processes on the shared subscription.

One gateway process is bound by the GIL to about one core: paho's packet handling, decoding and
the line protocol are Python. The broker already splits a shared subscription between its
members, so the way to use more cores is more members: each worker is a complete gateway
(``Gateway``) with its own client id (``<mqtt.client_id>-<k>``), session, batches and
acknowledgements, exactly as if an operator had started N gateways. This process only
supervises them:

* it restarts a worker that dies (after a short, growing delay), and stops them on SIGTERM;
* it serves ``/metrics`` and ``/healthz`` for all of them: every worker reports a snapshot of
  its metrics and health through a pipe twice a second, and this process serves their sum;
* when this process dies, however it dies, the pipes close, every worker notices at its next
  report and stops (it finishes or abandons its batch; nothing acknowledged is lost, nothing
  unacknowledged is acknowledged), so a SIGKILLed gateway leaves no orphans behind.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from gateway.config import GatewayConfig, HttpConfig
from gateway.metrics import Metrics, MetricsServer

log = logging.getLogger("smartbins.gateway.workers")

REPORT_EVERY_S = 0.5
#: A worker whose last report is older than this is reported unhealthy.
STALE_S = 5.0
RESTART_MIN_S = 0.5
RESTART_MAX_S = 10.0


def worker_config(cfg: GatewayConfig, k: int) -> GatewayConfig:
    """Worker ``k``'s view of the config: its own client id, no HTTP server (the supervisor
    serves one for all)."""
    return replace(
        cfg,
        mqtt=replace(cfg.mqtt, client_id=f"{cfg.mqtt.client_id}-{k}"),
        http=replace(cfg.http, enabled=False),
    )


def report_loop(out: IO[str], metrics: Metrics, health: object, stop: threading.Event) -> None:
    """In a worker: send snapshots to the supervisor until ``stop``; a closed pipe means the
    supervisor is gone, and the worker stops."""
    while not stop.is_set():
        ok, detail = health()  # type: ignore[operator]
        detail = {**detail, "messages_received": metrics.get("gateway_messages_received_total")}
        line = json.dumps({"metrics": metrics.snapshot(), "ok": ok, "detail": detail})
        try:
            out.write(line + "\n")
            out.flush()
        except (BrokenPipeError, OSError, ValueError):
            log.warning("the supervising gateway process is gone; stopping this worker")
            stop.set()
            return
        stop.wait(REPORT_EVERY_S)


@dataclass
class Worker:
    k: int
    proc: subprocess.Popen[bytes] | None = None
    report: dict[str, object] = field(default_factory=dict)
    reported_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0


class Supervisor:
    """Runs and watches the workers; serves their summed metrics and health."""

    def __init__(self, cfg: GatewayConfig, config_path: Path) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.workers = [Worker(k) for k in range(1, cfg.process.workers + 1)]
        self.own = Metrics()
        self._lock = threading.Lock()
        self.http: MetricsServer | None = None
        self.stopping = False

    # ---------------------------------------------------------------- workers

    def _spawn(self, w: Worker) -> None:
        r, wfd = os.pipe()
        w.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config",
             str(self.config_path), "--worker", str(w.k), "--report-fd", str(wfd)],
            pass_fds=(wfd,),
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(wfd)
        threading.Thread(
            target=self._read_reports, args=(w, w.proc, os.fdopen(r, "r")),
            name=f"gateway-worker-{w.k}-reports", daemon=True,
        ).start()  # fmt: skip
        log.info("worker %d started (pid %d)", w.k, w.proc.pid)

    def _read_reports(self, w: Worker, proc: subprocess.Popen[bytes], pipe: IO[str]) -> None:
        with pipe:
            for line in pipe:
                try:
                    report = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    if w.proc is proc:
                        w.report, w.reported_at = report, time.monotonic()

    def start(self) -> None:
        for w in self.workers:
            self._spawn(w)
        if self.cfg.http.enabled:
            h: HttpConfig = self.cfg.http
            self.http = MetricsServer(h.host, h.port, self.metrics, self.health)
            log.info("metrics of %d workers on http://%s:%d/metrics",
                     len(self.workers), h.host, self.http.port)  # fmt: skip

    def watch(self, now: float) -> None:
        """Restart workers that died, each after a delay that grows while it keeps dying."""
        if self.stopping:
            return
        for w in self.workers:
            if w.proc is None:
                if now >= w.next_start:
                    self._spawn(w)
                continue
            rc = w.proc.poll()
            if rc is None:
                continue
            with self._lock:
                w.proc, w.report = None, {}
            w.restarts += 1
            self.own.inc("gateway_worker_restarts_total")
            delay = min(RESTART_MAX_S, RESTART_MIN_S * 2 ** min(w.restarts - 1, 10))
            w.next_start = now + delay
            log.error("worker %d exited with status %s; restarting in %.1f s", w.k, rc, delay)
        running = sum(1 for w in self.workers if w.proc is not None and w.proc.poll() is None)
        self.own.set("gateway_workers", running)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every worker (each drains what it holds), then wait; SIGKILL stragglers."""
        self.stopping = True
        procs = [w.proc for w in self.workers if w.proc is not None]
        for pr in procs:
            if pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for pr in procs:
            try:
                pr.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop in %.0f s; killing it", pr.pid, timeout_s)
                pr.kill()
                pr.wait()
        if self.http is not None:
            self.http.close()

    # ---------------------------------------------------------------- metrics and health

    def metrics(self) -> Metrics:
        with self._lock:
            snaps = [w.report["metrics"] for w in self.workers if w.report.get("metrics")]
        return Metrics.merged([self.own.snapshot(), *snaps])  # type: ignore[list-item]

    def health(self) -> tuple[bool, dict[str, object]]:
        now = time.monotonic()
        detail: dict[str, object] = {}
        ok = not self.stopping
        with self._lock:
            for w in self.workers:
                fresh = w.proc is not None and now - w.reported_at < STALE_S and w.report
                w_ok = bool(fresh and w.report.get("ok"))
                ok = ok and w_ok
                detail[f"worker_{w.k}"] = {"ok": w_ok, **(w.report.get("detail") or {})}  # type: ignore[dict-item]
        return ok, detail


def run_supervisor(cfg: GatewayConfig, config_path: Path, stop: threading.Event) -> bool:
    """Run until ``stop`` (SIGTERM/SIGINT). True: stopped on request."""
    sup = Supervisor(cfg, config_path)
    sup.start()
    try:
        while not stop.is_set():
            sup.watch(time.monotonic())
            stop.wait(0.2)
    finally:
        sup.stop()
    return True
