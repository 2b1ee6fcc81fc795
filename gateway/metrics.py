"""Counters for ``/metrics`` (Prometheus text format 0.0.4) and ``/healthz``, on loopback.

No client library: a handful of counters, gauges and one histogram are a few lines, and the
text format is stable. ``http.server`` in a daemon thread serves them; it binds to a loopback
address only (the config refuses anything else).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Write latency buckets [s].
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HELP = {
    "gateway_messages_received_total": ("counter", "MQTT messages received from the broker"),
    "gateway_messages_redelivered_total": (
        "counter",
        "messages the broker sent again (DUP flag): after a reconnect, unacknowledged ones",
    ),
    "gateway_readings_received_total": ("counter", "readings that passed validation"),
    "gateway_readings_written_total": ("counter", "readings written to InfluxDB (2xx)"),
    "gateway_deadletters_total": ("counter", "rejected messages or readings, by reason"),
    "gateway_statuses_total": ("counter", "device status messages stored"),
    "gateway_writes_total": ("counter", "successful InfluxDB write requests"),
    "gateway_write_retries_total": ("counter", "InfluxDB writes retried after a failure"),
    "gateway_write_splits_total": ("counter", "batches halved after a 400/413"),
    "gateway_store_rejected_points_total": ("counter", "points InfluxDB refused for good"),
    "gateway_acks_published_total": ("counter", "end-to-end acknowledgements published"),
    "gateway_broker_acks_total": ("counter", "broker messages acknowledged (PUBACK) after storage"),
    "gateway_broker_acks_skipped_total": (
        "counter",
        "stored messages not PUBACKed because their connection was gone (redelivered instead)",
    ),
    "gateway_mqtt_connects_total": ("counter", "MQTT connections established"),
    "gateway_mqtt_subscribes_total": ("counter", "subscriptions made (one per connect)"),
    "gateway_queue_messages": ("gauge", "messages received and not yet acknowledged"),
    "gateway_queue_points": ("gauge", "decoded points waiting to be written"),
    "gateway_queue_undecoded": ("gauge", "messages received and not yet decoded"),
    "gateway_mqtt_connected": ("gauge", "1 when connected to the broker"),
    "gateway_influx_healthy": ("gauge", "1 when the last InfluxDB write succeeded"),
    "gateway_write_seconds": ("histogram", "duration of InfluxDB write requests"),
    "gateway_workers": ("gauge", "worker processes running ([process] workers > 1)"),
    "gateway_worker_restarts_total": ("counter", "worker processes restarted after they died"),
}


#: Series that only exist with labels (one per reason).
LABELLED = frozenset({"gateway_deadletters_total"})


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(
        f'{k}="{v}"'.replace("\\", "\\\\").replace("\n", "\\n") for k, v in sorted(labels.items())
    )
    return "{" + body + "}"


class Metrics:
    """Thread-safe counters, gauges and histograms keyed by name and labels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._hist: dict[str, list[float]] = {}  # bucket counts..., sum, count

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = value

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            if labels:
                return self._values.get((name, tuple(sorted(labels.items()))), 0)
            return sum(v for (n, _), v in self._values.items() if n == name)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        with self._lock:
            return {
                dict(lbl)[label]: v
                for (n, lbl), v in self._values.items()
                if n == name and label in dict(lbl)
            }

    def observe(self, name: str, value: float) -> None:
        with self._lock:
            h = self._hist.setdefault(name, [0.0] * (len(BUCKETS) + 2))
            for i, b in enumerate(BUCKETS):
                if value <= b:
                    h[i] += 1
            h[-2] += value
            h[-1] += 1

    def snapshot(self) -> dict[str, object]:
        """Everything, JSON-able: what a worker process reports to its supervisor."""
        with self._lock:
            return {
                "values": [[n, [list(kv) for kv in lbl], v]
                           for (n, lbl), v in self._values.items()],
                "hist": {k: list(v) for k, v in self._hist.items()},
            }

    @classmethod
    def merged(cls, snapshots: list[dict[str, object]]) -> Metrics:
        """The sum of several workers' snapshots. Gauges add up too: queue depths to the
        process tree's, ``gateway_mqtt_connected`` to the number of connected workers."""
        out = cls()
        for snap in snapshots:
            for name, lbl, v in snap["values"]:  # type: ignore[attr-defined]
                key = (name, tuple((k, val) for k, val in lbl))
                out._values[key] = out._values.get(key, 0) + v
            for name, h in snap["hist"].items():  # type: ignore[attr-defined]
                acc = out._hist.setdefault(name, [0.0] * len(h))
                for i, x in enumerate(h):
                    acc[i] += x
        return out

    def render(self) -> str:
        with self._lock:
            values = dict(self._values)
            hist = {k: list(v) for k, v in self._hist.items()}
        lines: list[str] = []
        names = sorted({n for n, _ in values} | set(hist) | set(HELP))
        for name in names:
            kind, text = HELP.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            if kind == "histogram":
                h = hist.get(name, [0.0] * (len(BUCKETS) + 2))
                for b, c in zip(BUCKETS, h, strict=False):
                    lines.append(f'{name}_bucket{{le="{b}"}} {c:g}')
                lines.append(f'{name}_bucket{{le="+Inf"}} {h[-1]:g}')
                lines.append(f"{name}_sum {h[-2]:.6f}")
                lines.append(f"{name}_count {h[-1]:g}")
                continue
            series = [(lbl, v) for (n, lbl), v in values.items() if n == name]
            if not series and name not in LABELLED:
                series = [((), 0.0)]  # unlabelled series exist from the start (at 0)
            for lbl, v in sorted(series):
                lines.append(f"{name}{_labels(dict(lbl))} {v:g}")
        return "\n".join(lines) + "\n"


class MetricsServer:
    """``GET /metrics`` and ``GET /healthz`` on a loopback address, in a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics | Callable[[], Metrics],
        health: Callable[[], tuple[bool, dict[str, object]]],
    ) -> None:
        current = metrics if callable(metrics) else (lambda: metrics)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body = current().render().encode()
                    self._send(200, "text/plain; version=0.0.4; charset=utf-8", body)
                elif self.path == "/healthz":
                    ok, detail = health()
                    body = json.dumps({"ok": ok, **detail}, sort_keys=True).encode() + b"\n"
                    self._send(200 if ok else 503, "application/json", body)
                else:
                    self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # quiet: scraped often
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="gateway-http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
