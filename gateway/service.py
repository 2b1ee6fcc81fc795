"""The running gateway: broker messages in, InfluxDB writes, then acknowledgements out.

Two threads do the work. paho's network thread decodes each message (``ingest.decode``) and
adds it to the batcher. The writer thread takes a batch when it is full or old enough, writes
the readings and dead letters (``store.Store``: retry or split), records device status, and
only then publishes the end-to-end acknowledgements and dead letters and PUBACKs the broker
messages. A crash anywhere before that point leaves the messages unacknowledged: the broker
redelivers them, or the devices resend them, and the rewrite lands on the same point keys.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from gateway import ingest
from gateway.config import GatewayConfig, Secrets
from gateway.metrics import Metrics, MetricsServer
from gateway.mqtt import Delivery, MqttLink
from gateway.store import Stopped, Store
from smartbins import protocol as p
from smartbins import storage
from smartbins.devicestatus import StatusStore
from smartbins.influx import InfluxClient

log = logging.getLogger("smartbins.gateway")

#: Messages decoded per turn of the decoder thread (then handed to the batcher at once).
DECODE_CHUNK = 100


class Gateway:
    def __init__(
        self,
        cfg: GatewayConfig,
        secrets: Secrets,
        *,
        wall_ms: Callable[[], int] = ingest.wall_ms,
    ) -> None:
        self.cfg = cfg
        self.wall_ms = wall_ms
        self.metrics = Metrics()
        self.stopping = threading.Event()
        self._abort = threading.Event()
        self._cond = threading.Condition()
        self.batcher = ingest.Batcher(cfg.batch.max_points, max(1, int(cfg.batch.max_age_s * 1000)))
        self.in_flight = 0  # messages received and not yet finished (acked or skipped)
        # The hard bound (batch.max_queue_messages): reached, it pauses paho's network thread
        # (TCP backpressure) instead of dropping. Mosquitto 2.0.11 was measured sending well
        # beyond the Receive Maximum under a storm, so this, not Receive Maximum, is the bound.
        self.queue_limit = cfg.batch.max_queue_messages
        self.tolerance_ms = int(cfg.validation.future_tolerance_s * 1000)
        self.deadletter_log = ingest.LogLimiter(int(cfg.log.deadletter_interval_s * 1000))
        influx = InfluxClient(
            cfg.influxdb.url,
            cfg.influxdb.database,
            username=cfg.influxdb.username or None,
            password=secrets.influx_password,
            timeout=cfg.influxdb.timeout_s,
        )
        self.store = Store(influx, cfg.retry, self.metrics, stop=self._abort)
        self.clock_check = ingest.ClockCheck()  # the writer thread's: see _process
        self.status: StatusStore | None = None
        self.mqtt = MqttLink(cfg.mqtt, secrets.mqtt_password, self._on_message, self.metrics)
        self.http: MetricsServer | None = None
        self._raw: deque[tuple[str, bytes, Delivery, int]] = deque()
        self._decoder = threading.Thread(target=self._decode_loop, name="gateway-decoder")
        self._writer = threading.Thread(target=self._write_loop, name="gateway-writer")

    # ---------------------------------------------------------------- life cycle

    def start(self) -> None:
        self.status = StatusStore(self.cfg.status.path)
        if self.cfg.http.enabled:
            self.http = MetricsServer(
                self.cfg.http.host, self.cfg.http.port, self.metrics, self.health
            )
            log.info("metrics on http://%s:%d/metrics", self.cfg.http.host, self.http.port)
        self._decoder.start()
        self._writer.start()
        self.mqtt.start()
        log.info(
            "gateway %s: %s:%d %s -> %s/%s",
            self.cfg.mqtt.client_id,
            self.cfg.mqtt.host,
            self.cfg.mqtt.port,
            self.mqtt.topic_filter,
            self.cfg.influxdb.url,
            self.cfg.influxdb.database,
        )

    def stop(self, drain_s: float = 5.0) -> None:
        """Stop taking messages, write what is pending (within ``drain_s``), disconnect.
        Anything not written by then stays unacknowledged and comes back."""
        self.stopping.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + drain_s
        for thread in (self._decoder, self._writer):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._abort.set()
        with self._cond:
            self._cond.notify_all()
        for thread in (self._decoder, self._writer):
            if thread.is_alive():
                thread.join()
        self.mqtt.stop()
        if self.http:
            self.http.close()
        if self.status:
            self.status.close()

    def health(self) -> tuple[bool, dict[str, object]]:
        connected = self.mqtt.connected and self.mqtt.subscribed.is_set()
        ok = connected and self.store.healthy and not self.stopping.is_set()
        detail: dict[str, object] = {
            "mqtt_connected": connected,
            "influx_healthy": self.store.healthy,
            "queue_messages": self.in_flight,
        }
        if self.store.last_error:
            detail["influx_error"] = self.store.last_error
        return ok, detail

    # ---------------------------------------------------------------- paho thread

    def _on_message(self, topic: str, payload: bytes, delivery: Delivery) -> None:
        """Only queue the raw message: decoding here would keep paho's network thread from
        writing PUBACKs and acknowledgements while it reads a long run of incoming messages."""
        now = self.wall_ms()
        self.metrics.inc("gateway_messages_received_total")
        with self._cond:
            # Backpressure, not loss: wait (the network thread pauses) while the queue is full.
            # Never while the writer waits for PUBACKs that only this thread can read.
            while (
                self.in_flight >= self.queue_limit
                and not self._abort.is_set()
                and not self.mqtt.publisher_waiting
            ):
                self._cond.wait(0.1)
            if self.stopping.is_set():
                return  # not acknowledged: redelivered after the restart
            self.in_flight += 1
            self._raw.append((topic, payload, delivery, now))
            self._gauges()
            self._cond.notify_all()

    # ---------------------------------------------------------------- decoder thread

    def _decode_loop(self) -> None:
        while True:
            with self._cond:
                while not self._raw:
                    if self.stopping.is_set() or self._abort.is_set():
                        return
                    self._cond.wait(0.5)
                items = [self._raw.popleft() for _ in range(min(DECODE_CHUNK, len(self._raw)))]
            decoded = [
                ingest.decode(
                    topic, payload, received, self.tolerance_ms, token=delivery,
                    retained=delivery.retain,
                )
                for topic, payload, delivery, received in items
            ]
            self.metrics.inc(
                "gateway_readings_received_total", sum(len(m.readings) for m in decoded)
            )
            with self._cond:
                now = self.wall_ms()
                for inbound in decoded:
                    self.batcher.add(inbound, now)
                self._gauges()
                self._cond.notify_all()

    def _gauges(self) -> None:
        self.metrics.set("gateway_queue_messages", self.in_flight)
        self.metrics.set("gateway_queue_points", self.batcher.points)
        self.metrics.set("gateway_queue_undecoded", len(self._raw))

    # ---------------------------------------------------------------- writer thread

    def _write_loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while True:
                        now = self.wall_ms()
                        if self.batcher.due(now) or (self.stopping.is_set() and len(self.batcher)):
                            break
                        if self._abort.is_set() or (
                            self.stopping.is_set() and not self._decoder.is_alive()
                        ):
                            return
                        wait = self.batcher.wait_ms(now)
                        self._cond.wait(0.5 if wait is None else min(0.5, wait / 1000))
                    batch = self.batcher.take()
                    self._gauges()
                self._process(batch)
        except Stopped:
            log.info("stopped with a write pending; its messages stay unacknowledged")
        except Exception:
            log.exception("writer thread failed; stopping so a supervisor restarts the gateway")
            self.stopping.set()
            self._abort.set()

    def _process(self, batch: ingest.Batch) -> None:
        points = batch.reading_points(self.clock_check)
        rejected = self.store.write([storage.to_line(pt) for pt, _ in points])
        for i, detail in rejected.items():
            batch.reject_stored(points[i][1], detail)
        dead = batch.dead_letters()
        if dead:
            lost = self.store.write([storage.to_line(storage.deadletter_point(d)) for d in dead])
            for i, detail in lost.items():
                log.error("dead letter could not be stored (%s): %s", detail, dead[i].detail)
        readings = [(r, m.received_ms) for m in batch.messages for r in m.readings]
        assert self.status is not None
        self.status.apply(batch.statuses(), readings, batch.retained_statuses())
        # Durable now: tell the devices and the broker.
        now = self.wall_ms()
        for d in dead:
            self._dead_letter(d, now)
        for ack in batch.acks(now):
            self.mqtt.publish(*p.encode_message(ack))
            self.metrics.inc("gateway_acks_published_total")
        written = len(points) - len(rejected)
        self.metrics.inc("gateway_readings_written_total", written)
        self.metrics.inc("gateway_statuses_total", len(batch.statuses()))
        self.mqtt.ack_many([m.token for m in batch.messages])  # type: ignore[misc]
        with self._cond:
            self.in_flight -= len(batch.messages)
            self._gauges()
            self._cond.notify_all()

    def _dead_letter(self, d: p.DeadLetter, now: int) -> None:
        self.mqtt.publish(*p.encode_message(d))
        self.metrics.inc("gateway_deadletters_total", reason=d.reason.value)
        device = d.device or p.UNKNOWN_DEVICE
        allowed, held = self.deadletter_log.allow(device, now)
        if allowed:
            more = f" ({held} more from this device not logged)" if held else ""
            log.warning("dead letter from %s: %s: %s%s", device, d.reason.value, d.detail, more)


def run_forever(gw: Gateway, stop: threading.Event) -> bool:
    """Start, wait for ``stop`` (SIGTERM/SIGINT) or a failed writer, stop. False when the
    gateway stopped by itself (a failure, logged), so the exit status tells a supervisor."""
    gw.start()
    try:
        while not stop.is_set() and not gw.stopping.is_set():
            stop.wait(0.5)
    finally:
        gw.stop()
    return stop.is_set()
