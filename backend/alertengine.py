"""The alert engine: its own process beside the API (`smartbins alerts --config FILE`, or
``python -m backend.alertengine --config FILE``), with its own broker account.

It reads every device's readings as they reach the broker, on a persistent session with
manual acknowledgement: a message is acknowledged only after the alerts it raises (and their
deliveries) are committed to the registry, so a crash loses nothing (the broker redelivers)
and repeats nothing (a reading not newer than the device's newest processed one is skipped;
an active alert of the same device and kind is not opened twice). A delivery thread sends the
outbox: an HMAC-signed webhook POST (retried with a doubling wait) and a QoS 1 publish on
``<topic_prefix>/<municipality>``; a webhook that is down never holds up the reading of new
messages. It also opens offline alerts for devices silent for three report intervals.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import logging
import signal
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from backend import alerts
from backend import settings as settings_mod
from backend.settings import Settings
from smartbins import protocol as p
from smartbins import settings as sm
from smartbins.registry import Registry, now_ms

log = logging.getLogger("smartbins.alerts")
LIVE_TOPIC = p.topic_for("reading", "+")
BATCH_TOPIC = p.topic_for("batch", "+")
SIGNATURE_HEADER = "X-Smartbins-Signature"
EVENT_HEADER = "X-Smartbins-Event"


class WriteTurns:
    """Turns at writing the registry among the engine's threads, urgent ones first.

    SQLite lets one writer in at a time and has a waiting writer poll with growing sleeps, so a
    thread that commits back to back (the backfill session in a storm) starves the others: a
    live fire reading waited 20 s. Here an urgent writer (the live session, deliveries) goes
    before every waiting backfill write."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent = 0

    @contextmanager
    def turn(self, urgent: bool) -> Iterator[None]:
        with self._cond:
            self._urgent += urgent
            while self._busy or (not urgent and self._urgent):
                self._cond.wait()
            self._urgent -= urgent
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class AlertEngine:
    def __init__(self, settings: Settings, clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.a = settings.alerts
        self.clock = clock
        self.password = sm.read_secret(self.a.password_env, self.a.password_file,
                                       "alert engine's broker password")
        self.secret = ""
        if self.a.webhook_url:
            self.secret = sm.read_secret(self.a.webhook_secret_env, self.a.webhook_secret_file,
                                         "webhook secret")
        self.channels = self.a.channels
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.connected = threading.Event()
        #: Each MQTT thread's registry connection (one per client: live and backfill).
        self._local = threading.local()
        self._regs: list[Registry] = []
        self._regs_lock = threading.Lock()
        self.turns = WriteTurns()
        # Two sessions, so that a backlog of backfilled batches (a fleet back after an outage
        # sends hundreds of thousands of readings) never queues in front of a live reading: a
        # fire alert waits for no backlog. The live session also publishes the alerts.
        self.client = self._client(self.a.client_id, LIVE_TOPIC, (BATCH_TOPIC,), "readings")
        self.backfill = self._client(f"{self.a.client_id}-backfill", BATCH_TOPIC, (),
                                     "backfill batches")
        self.client.on_disconnect = lambda *a: self.connected.clear()

    def _client(
        self, client_id: str, topic: str, drop: tuple[str, ...], what: str
    ) -> mqtt.Client:
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        c.username_pw_set(self.a.username, self.password)
        c.reconnect_delay_set(0.2, 5)

        def on_connect(client: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
            if rc.is_failure:
                log.error("broker refused the alert engine's account: %s", rc)
                return
            if drop:  # a session from before the split also held the other topic
                client.unsubscribe(list(drop))
            client.subscribe([(topic, 1)])
            if client is self.client:
                self.connected.set()

        def on_subscribe(*args: Any) -> None:
            log.info("subscribed to the devices' %s", what)

        c.on_connect = on_connect
        c.on_message = self._on_message
        c.on_subscribe = on_subscribe
        return c

    # --------------------------------------------------------------- reading messages

    def _registry(self) -> Registry:
        reg: Registry | None = getattr(self._local, "reg", None)
        if reg is None:
            reg = self._local.reg = Registry(self.settings.registry.path)
            with self._regs_lock:
                self._regs.append(reg)
        return reg

    def _on_message(self, client: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            m = p.parse_message(msg.topic, msg.payload)
        except p.PayloadError:
            m = None  # the gateway dead-letters it; nothing to alert on
        readings: tuple[p.Reading, ...] = ()
        if isinstance(m, p.Reading):
            readings = (m,)
        elif isinstance(m, p.ReadingBatch):
            readings = tuple(sorted(m.readings, key=lambda r: r.ts_ms))
        with self.turns.turn(urgent=client is self.client):
            opened = alerts.process_readings(self._registry(), readings, self.channels,
                                             self.clock())
        client.ack(msg.mid, msg.qos)  # only now: the alerts are committed
        if opened:
            self.wake.set()

    # --------------------------------------------------------------- delivering

    def deliver_once(self, reg: Registry) -> int:
        """Send what is due; returns how many deliveries succeeded."""
        done = 0
        t = self.clock()
        if self.a.webhook_url:
            for event_id, body in alerts.due(reg, "webhook", t):
                error = self._post(body)
                if error is None:
                    self._mark(alerts.delivered, reg, event_id, "webhook", self.clock())
                    done += 1
                else:
                    self._mark(alerts.failed, reg, event_id, "webhook", self.clock(), error)
        if self.connected.is_set():
            for event_id, body in alerts.due(reg, "mqtt", t):
                topic = f"{self.a.topic_prefix}/{body['alert']['municipality_id']}"
                info = self.client.publish(topic, alerts.encode(body), qos=1)
                try:
                    info.wait_for_publish(5)
                except (RuntimeError, ValueError) as e:
                    self._mark(alerts.failed, reg, event_id, "mqtt", self.clock(), str(e))
                    continue
                if info.is_published():
                    self._mark(alerts.delivered, reg, event_id, "mqtt", self.clock())
                    done += 1
                else:
                    self._mark(alerts.failed, reg, event_id, "mqtt", self.clock(),
                               "no PUBACK within 5 s")
        return done

    def _mark(self, record: Callable[..., None], *args: Any) -> None:
        with self.turns.turn(urgent=True):
            record(*args)

    def _post(self, body: dict[str, Any]) -> str | None:
        data = alerts.encode(body)
        url = urllib.parse.urlsplit(self.a.webhook_url)
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname or "127.0.0.1", url.port, timeout=self.a.webhook_timeout_s)
        try:
            conn.request(
                "POST",
                url.path or "/",
                body=data,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(self.secret, data),
                    EVENT_HEADER: str(body["event_id"]),
                },
            )
            status = conn.getresponse().status
        except OSError as e:
            return f"webhook: {e}"
        finally:
            conn.close()
        return None if 200 <= status < 300 else f"webhook answered {status}"

    # --------------------------------------------------------------- running

    def seed(self, reg: Registry) -> None:
        """Devices known only from InfluxDB (silent since before the engine first ran), read
        window by window as the API's cache loads them."""
        from backend.app import influx_factory
        from backend.readings import Readings

        try:
            readings = Readings(influx_factory(self.settings), 1.0)  # no thread: one load
            readings.load()
        except Exception as e:  # optional: without it, devices are learnt live
            log.warning("could not read the devices' newest readings from InfluxDB: %s", e)
            return
        latest = {
            d: (r.time_ms, int(r.values.get("interval") or 3600))
            for d, r in readings.latest().items()
        }
        log.info("learnt %d devices from InfluxDB", alerts.seed_devices(reg, latest))

    def run(self) -> None:
        a = self.a
        reg = Registry(self.settings.registry.path)
        self.seed(reg)  # before the first reading: devices silent since are known
        for c in (self.client, self.backfill):
            c.connect_async(a.mqtt_host, a.mqtt_port, keepalive=30)
            c.loop_start()
        next_check = 0.0
        try:
            while not self.stop_event.is_set():
                t = self.clock()
                if t >= next_check:
                    with self.turns.turn(urgent=True):
                        offline = alerts.check_offline(reg, self.channels, t)
                    if offline:
                        self.wake.set()
                    next_check = t + a.offline_check_s * 1000
                self.deliver_once(reg)
                self.wake.wait(0.5)
                self.wake.clear()
        finally:
            for c in (self.client, self.backfill):
                c.disconnect()
                c.loop_stop()
            reg.close()
            with self._regs_lock:
                for r in self._regs:
                    r.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.alertengine")
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    engine = AlertEngine(settings_mod.load(args.config))
    signal.signal(signal.SIGTERM, lambda *_: engine.stop())
    try:
        engine.run()
    except KeyboardInterrupt:
        engine.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
