"""Writes to InfluxDB (v1 ``/write``): retry what may succeed later, split what never will.

Every store error is sorted into one of two kinds, as Telegraf's influxdb output does
(``plugins/outputs/influxdb/http.go``), except that "never" goes to the dead-letter path
instead of being dropped:

* **retry** (the same request may succeed later): no connection, timeouts, 5xx, 408, 429, and
  401/403/404 (credentials or database wrong or missing: an operator fixes that; the readings
  are fine and must not be dead-lettered for it). Retried with capped exponential backoff and
  jitter, forever, until the gateway stops: the bounded queue upstream turns a long outage into
  backpressure on the broker, never into loss.
* **split** (a point in the request is bad): 400 and 413. The batch is halved until each bad
  point is alone; the good halves are written, each lone bad point is reported to the caller,
  which dead-letters it (``store_rejected``). InfluxDB 1.x may already have written the good
  points of a "partial write": writing them again is harmless (same key, same values).

Clock, sleep and random source are injected, so the backoff schedule is tested without waiting.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.config import RetryConfig
from gateway.metrics import Metrics
from smartbins import storage
from smartbins.influx import InfluxClient, InfluxError

log = logging.getLogger("smartbins.gateway.store")

#: HTTP statuses that mean "a point in this request is bad": split and dead-letter.
SPLIT_STATUSES = frozenset({400, 413})


class Stopped(Exception):
    """The gateway is stopping while a write was still being retried (nothing was acked)."""


@dataclass
class Backoff:
    """Capped exponential backoff with proportional jitter from a seeded random source."""

    cfg: RetryConfig
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        self.rng.seed(self.cfg.seed)

    def next_delay(self) -> float:
        base = min(self.cfg.max_s, self.cfg.initial_s * self.cfg.multiplier**self.attempt)
        self.attempt += 1
        spread = base * self.cfg.jitter
        return max(0.0, min(self.cfg.max_s, base + self.rng.uniform(-spread, spread)))

    def reset(self) -> None:
        self.attempt = 0


def classify(error: InfluxError) -> str:
    """``"split"`` when a point in the request is bad, ``"retry"`` otherwise (see module doc)."""
    if error.status in SPLIT_STATUSES:
        return "split"
    return "retry"


@dataclass
class Store:
    """Writes lines to InfluxDB; returns the indices of lines refused for good."""

    client: InfluxClient
    retry: RetryConfig
    metrics: Metrics
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] | None = None
    healthy: bool = True
    last_error: str = ""

    def __post_init__(self) -> None:
        self.backoff = Backoff(self.retry)
        if self.sleep is None:
            self.sleep = self.stop.wait
        self._set_healthy(self.healthy)

    def _set_healthy(self, healthy: bool) -> None:
        """``healthy`` and its gauge together: /metrics says what /healthz says."""
        self.healthy = healthy
        self.metrics.set("gateway_influx_healthy", 1 if healthy else 0)

    def write(self, lines: Sequence[str]) -> dict[int, str]:
        """Write all lines; return {index: reason} of the ones InfluxDB refused for good.

        Blocks (retrying) while InfluxDB is unreachable; raises Stopped if asked to stop.
        """
        rejected: dict[int, str] = {}
        self._write_range(lines, list(range(len(lines))), rejected)
        return rejected

    def _write_range(self, lines: Sequence[str], idx: list[int], rejected: dict[int, str]) -> None:
        if not idx:
            return
        error = self._attempt([lines[i] for i in idx])
        if error is None:
            return
        if len(idx) == 1:
            rejected[idx[0]] = str(error)
            self.metrics.inc("gateway_store_rejected_points_total")
            return
        self.metrics.inc("gateway_write_splits_total")
        mid = len(idx) // 2
        self._write_range(lines, idx[:mid], rejected)
        self._write_range(lines, idx[mid:], rejected)

    def _attempt(self, chunk: list[str]) -> InfluxError | None:
        """Write until 2xx (None) or a 'split' error (returned); retry everything else."""
        while True:
            if self.stop.is_set():
                raise Stopped("stopping with a write not done")
            t0 = self.clock()
            try:
                self.client.write_lines(chunk, precision=storage.PRECISION)
            except InfluxError as e:
                self.metrics.observe("gateway_write_seconds", self.clock() - t0)
                if classify(e) == "split":
                    self.backoff.reset()
                    return e
                self._failed(e)
                continue
            self.metrics.observe("gateway_write_seconds", self.clock() - t0)
            self.metrics.inc("gateway_writes_total")
            if not self.healthy:
                log.info("influxdb writes succeed again")
            self._set_healthy(True)
            self.last_error = ""
            self.backoff.reset()
            return None

    def _failed(self, e: InfluxError) -> None:
        delay = self.backoff.next_delay()
        self.metrics.inc("gateway_write_retries_total")
        if self.healthy or self.backoff.attempt in (3, 10) or self.backoff.attempt % 50 == 0:
            log.warning(
                "influxdb write failed (%s); retry %d in %.2f s", e, self.backoff.attempt, delay
            )
        self._set_healthy(False)
        self.last_error = str(e)
        assert self.sleep is not None
        self.sleep(delay)
