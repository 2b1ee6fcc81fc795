"""Alerts from simulated devices through the real broker: each kind raised once, acknowledged,
resolved; the webhook receiver sees each alert exactly once across a SIGKILL and restart of the
alert engine (its own process and broker account)."""

from __future__ import annotations

import hmac
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from api_world import World, secret_file

from backend import alerts
from backend.alertengine import EVENT_HEADER, SIGNATURE_HEADER, sign
from backend.settings import AlertSettings
from smartbins import assets, provisioning
from smartbins import protocol as p
from smartbins import settings as sm
from smartbins.passwords import PasswordFile, new_secret
from smartbins.registry import now_ms
from smartbins.servers import REPO_ROOT, wait_until
from smartbins.testing import Broker

API = "/api/v1/municipalities/0101"
KINDS = tuple(k for k in alerts.KINDS if k not in alerts.PLANNED_KINDS)  # the engine's


class Receiver:
    """A webhook receiver on a free loopback port that checks each signature."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[dict] = []
        self.bad_signatures = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = hmac.compare_digest(self.headers[SIGNATURE_HEADER], sign(outer.secret, body))
                if not ok:
                    outer.bad_signatures += 1
                doc = json.loads(body)
                assert self.headers[EVENT_HEADER] == str(doc["event_id"])
                outer.received.append(doc)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def kinds(self) -> list[str]:
        return sorted(d["alert"]["kind"] for d in self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(new_secret())
    yield r
    r.close()


class Engine:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config.with_suffix(".log")

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "backend.alertengine", "--config", str(self.config)],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            )

    def wait_subscribed(self, times: int) -> None:
        def subscribed() -> bool:
            text = self.log.read_text() if self.log.exists() else ""
            return text.count("subscribed to the devices' readings") >= times

        wait_until(subscribed, 15, message="alert engine subscribed")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None


def test_each_kind_once_across_an_engine_restart(
    fresh_world: World, broker: Broker, receiver: Receiver, mqtt_probe, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    w = fresh_world
    account = "smartbins.alerts"
    engine_password = new_secret()
    passwords = PasswordFile(broker.server.passwd_path, reload=broker.server.reload)
    passwords.update({account: engine_password})
    prefix = w.ids["a"]["device_id"].split("a-dev")[0]
    devices = {k: f"{prefix}al-{k.replace('_', '-')}" for k in KINDS}
    with w.registry() as reg:
        assets.add_bins(reg, "0101", [assets.NewBin(f"al-bin-{k}", "a-site-1", "residual", 240)
                                      for k in KINDS])
        creds = provisioning.provision(
            reg, passwords,
            [provisioning.ProvisionRequest(devices[k], f"al-bin-{k}") for k in KINDS],
            at_ms=now_ms() - 60_000,
        )
    password = {c.username: c.password for c in creds}
    settings = replace(w.settings, alerts=AlertSettings(
        mqtt_port=broker.port, password_file=secret_file(tmp_path / "engine", engine_password),
        client_id=f"smartbins.alerts-{prefix}", webhook_url=receiver.url,
        webhook_secret_file=secret_file(tmp_path / "hook", receiver.secret),
        offline_check_s=0.3,
    ))
    config = tmp_path / "api.toml"
    config.write_text(sm.to_toml(settings))
    watcher = mqtt_probe(broker.service.username, broker.service.password)
    watcher.connect()
    watcher.subscribe("sb/svc/alerts/0101")

    seq = {k: 0 for k in KINDS}

    def publish(kind: str, interval_s: int = 3600, **values: object) -> None:
        seq[kind] += 1
        values = {"distance_mm": 500, "fill_pct": 50.0, "temp_c": 15.0, "tilt_deg": 1.0,
                  "battery_mv": 3900, **values}
        r = p.Reading(device=devices[kind], seq=seq[kind], boot=1, ts_ms=now_ms(), fw="1.0.0",
                      interval_s=interval_s, **values)  # type: ignore[arg-type]
        dev = mqtt_probe(devices[kind], password[devices[kind]])
        assert not dev.connect().is_failure
        dev.publish(*p.encode_message(r))
        dev.close()

    engine = Engine(config)
    engine.start()
    try:
        engine.wait_subscribed(1)
        publish("offline")  # an ordinary reading, so that the engine knows the device
        publish("full", fill_pct=95.0, distance_mm=100)
        publish("fire", temp_c=85.0, flags=int(p.Flag.FIRE))
        publish("tilt", tilt_deg=95.0, flags=int(p.Flag.TILT))
        # The fire alert reaches its webhook within 10 s of the reading reaching the broker.
        wait_until(lambda: "fire" in receiver.kinds(), 10, message="fire alert at the webhook")
        wait_until(lambda: receiver.kinds() == ["fire", "full", "tilt"], 10)

        def delivered() -> int:
            with w.registry() as reg:
                return reg.db.execute("SELECT count(*) FROM alert_outbox WHERE"
                                      " delivered_ms IS NOT NULL").fetchone()[0]
        wait_until(lambda: delivered() == 6, 10, message="3 alerts delivered on 2 channels")
        engine.stop(signal.SIGKILL)

        # While the engine is down: two new conditions, and the fire persists (no new alert).
        publish("low_battery", battery_mv=3100, flags=int(p.Flag.LOW_BATTERY))
        publish("sensor_fault", distance_mm=None, fill_pct=None, errors=(1,),
                flags=int(p.Flag.SENSOR_ERROR))
        publish("fire", temp_c=90.0, flags=int(p.Flag.FIRE))
        publish("offline", interval_s=1)  # then silence: offline after three seconds
        engine.start()
        engine.wait_subscribed(2)
        wait_until(lambda: receiver.kinds() == sorted(KINDS), 20,
                   message=f"every kind at the webhook (got {receiver.kinds()})")
        wait_until(lambda: delivered() == 12, 10)
        wait_until(lambda: len(watcher.received()) >= 6, 10)
    finally:
        engine.stop()
    assert receiver.kinds() == sorted(KINDS)  # still exactly once each
    assert len({d["alert"]["id"] for d in receiver.received}) == len(KINDS)
    assert receiver.bad_signatures == 0
    on_topic = sorted(json.loads(m.payload)["alert"]["kind"] for m in watcher.received())
    assert on_topic == sorted(KINDS)

    h = w.auth("a-technician")
    listed = w.client.get(f"{API}/alerts", params={"state": "open"}, headers=h).json()
    mine = {a["kind"]: a for a in listed if a["device_id"] in devices.values()}
    assert sorted(mine) == sorted(KINDS)
    for kind, a in mine.items():
        r = w.client.post(f"{API}/alerts/{a['id']}/acknowledge", headers=h)
        assert r.json()["state"] == "acknowledged", (kind, r.text)
        r = w.client.post(f"{API}/alerts/{a['id']}/acknowledge", headers=h)
        assert (r.status_code, r.json()["detail"]) == (
            409, f"alert {a['id']}: is acknowledged; cannot become acknowledged")
        r = w.client.post(f"{API}/alerts/{a['id']}/resolve", headers=h)
        body = r.json()
        assert body["state"] == "resolved"
        assert [e["state"] for e in body["history"]] == ["open", "acknowledged", "resolved"]
        assert body["history"][1]["actor"].startswith("token:")
