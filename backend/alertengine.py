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
from collections.abc import Callable
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
SIGNATURE_HEADER = "X-Smartbins-Signature"
EVENT_HEADER = "X-Smartbins-Event"


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
        self._reg: Registry | None = None  # the MQTT thread's connection
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.a.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        self.client.username_pw_set(self.a.username, self.password)
        self.client.reconnect_delay_set(0.2, 5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_subscribe = lambda *a: log.info("subscribed to the devices' readings")

    # --------------------------------------------------------------- reading messages

    def _on_connect(self, client: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the alert engine's account: %s", rc)
            return
        client.subscribe([(p.topic_for("reading", "+"), 1), (p.topic_for("batch", "+"), 1)])
        self.connected.set()

    def _on_message(self, client: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        if self._reg is None:
            self._reg = Registry(self.settings.registry.path)
        try:
            m = p.parse_message(msg.topic, msg.payload)
        except p.PayloadError:
            m = None  # the gateway dead-letters it; nothing to alert on
        readings: tuple[p.Reading, ...] = ()
        if isinstance(m, p.Reading):
            readings = (m,)
        elif isinstance(m, p.ReadingBatch):
            readings = tuple(sorted(m.readings, key=lambda r: r.ts_ms))
        opened = []
        for r in readings:
            opened += alerts.process_reading(self._reg, r, self.channels, self.clock())
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
                    alerts.delivered(reg, event_id, "webhook", self.clock())
                    done += 1
                else:
                    alerts.failed(reg, event_id, "webhook", self.clock(), error)
        if self.connected.is_set():
            for event_id, body in alerts.due(reg, "mqtt", t):
                topic = f"{self.a.topic_prefix}/{body['alert']['municipality_id']}"
                info = self.client.publish(topic, alerts.encode(body), qos=1)
                try:
                    info.wait_for_publish(5)
                except (RuntimeError, ValueError) as e:
                    alerts.failed(reg, event_id, "mqtt", self.clock(), str(e))
                    continue
                if info.is_published():
                    alerts.delivered(reg, event_id, "mqtt", self.clock())
                    done += 1
                else:
                    alerts.failed(reg, event_id, "mqtt", self.clock(), "no PUBACK within 5 s")
        return done

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
        self.client.connect_async(a.mqtt_host, a.mqtt_port, keepalive=30)
        self.client.loop_start()
        reg = Registry(self.settings.registry.path)
        self.seed(reg)
        next_check = 0.0
        try:
            while not self.stop_event.is_set():
                t = self.clock()
                if t >= next_check:
                    if alerts.check_offline(reg, self.channels, t):
                        self.wake.set()
                    next_check = t + a.offline_check_s * 1000
                self.deliver_once(reg)
                self.wake.wait(0.5)
                self.wake.clear()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            reg.close()
            if self._reg is not None:
                self._reg.close()

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
