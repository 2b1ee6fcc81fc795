"""Fire alert latency, in one run, on this machine: from a device's reading reaching the broker
to the alert's signed webhook POST at a receiver (target: within 10 s).

A real Mosquitto (with the smartbins plugin and ACL), the registry with DEVICES provisioned
devices, the alert engine in its own process (`python -m backend.alertengine`, its own broker
account, webhook to a loopback receiver). Two phases:

(a) quiet: FIRES fire readings, one every 0.2 s, each from another device;
(b) storm: every other device backfills its buffer as batch messages (BATCH readings each, as
    fast as the broker takes them, for STORM seconds: what a fleet does after an outage),
    while FIRES fire readings are sent as in (a).

Time zero of each fire is the moment its publisher got the broker's PUBACK (QoS 1: the
reading has reached the broker). Printed per phase: p50, p99 and max to the webhook, next to
the same readings' arrival at a plain MQTT subscriber on the same broker (the baseline), and
the readings the engine took per second in the storm.

    .venv/bin/python bench/alert_latency.py [--devices 200] [--fires 20] [--storm 20]
        [--batch 100]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402

from backend.settings import AlertSettings, InfluxSettings, RegistrySettings, Settings  # noqa: E402
from smartbins import protocol as p  # noqa: E402
from smartbins import provisioning  # noqa: E402
from smartbins import settings as sm  # noqa: E402
from smartbins.passwords import PasswordFile, new_secret  # noqa: E402
from smartbins.provisioning import GATEWAY_ACCOUNT, ensure_service_accounts  # noqa: E402
from smartbins.registry import Registry, now_ms  # noqa: E402
from smartbins.servers import Mosquitto, free_port, temp_workdir, wait_until  # noqa: E402

MUNICIPALITY = "0101"
ENGINE = "smartbins.alerts"


class Receiver:
    """The webhook: the time each fire alert's POST arrived, by device."""

    def __init__(self) -> None:
        self.fire: dict[str, float] = {}
        self.posts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.monotonic()
                outer.posts += 1
                if body["alert"]["kind"] == "fire":
                    outer.fire.setdefault(body["alert"]["device_id"], now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


class Watcher:
    """The baseline: a plain subscriber (on the gateway's account, which may read readings);
    the arrival of each fire reading."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.fire: dict[str, float] = {}
        self.messages = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{username}-bench")
        self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(p.topic_for("reading", "+"), 1)
        if not subscribed.wait(10):
            raise RuntimeError("the baseline subscriber got no SUBACK")

    def _on_message(self, client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        self.messages += 1
        r = p.parse_message(msg.topic, msg.payload)
        if isinstance(r, p.Reading) and r.flags & p.Flag.FIRE:
            self.fire.setdefault(r.device, time.monotonic())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def device_client(port: int, device: str, password: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device)
    c.username_pw_set(device, password)
    c.max_inflight_messages_set(20)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def reading(device: str, seq: int, ts_ms: int, fire: bool = False) -> p.Reading:
    return p.Reading(
        device=device, seq=seq, boot=1, ts_ms=ts_ms, fw="1.0.0", interval_s=3600,
        distance_mm=500, fill_pct=50.0, temp_c=85.0 if fire else 15.0, tilt_deg=1.0,
        battery_mv=3900, flags=int(p.Flag.FIRE) if fire else 0,
    )


def send_fires(
    port: int, devices: list[str], passwords: dict[str, str], every_s: float
) -> dict[str, float]:
    """One fire reading per device, every ``every_s``; returns each one's PUBACK time."""
    acked: dict[str, float] = {}
    for d in devices:
        c = device_client(port, d, passwords[d])
        topic, payload = p.encode_message(reading(d, 1_000_000, now_ms(), fire=True))
        c.publish(topic, payload, qos=1).wait_for_publish(10)
        acked[d] = time.monotonic()
        c.disconnect()
        c.loop_stop()
        time.sleep(every_s)
    return acked


def storm(
    port: int, devices: list[str], passwords: dict[str, str], seconds: float, batch: int,
    sent: list[int], last_ts: list[int],
) -> None:
    """Each device backfills batches of old-to-new readings until ``seconds`` have passed."""
    stop = time.monotonic() + seconds
    clients = {d: device_client(port, d, passwords[d]) for d in devices}
    t0 = now_ms() - 30 * 86_400_000
    seq = 0
    try:
        while time.monotonic() < stop:
            infos = []
            for d, c in clients.items():
                rs = tuple(reading(d, seq + i, t0 + (seq + i) * 60_000) for i in range(batch))
                topic, payload = p.encode_message(p.ReadingBatch(d, rs))
                infos.append(c.publish(topic, payload, qos=1))
            for info in infos:
                info.wait_for_publish(30)
            seq += batch
            sent[0] += batch * len(clients)
            last_ts[0] = t0 + (seq - 1) * 60_000
    finally:
        for c in clients.values():
            c.disconnect()
            c.loop_stop()


def quantiles(latencies: list[float]) -> tuple[float, float, float]:
    qs = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else (
        latencies * 99)
    return qs[49], qs[98], max(latencies)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=200, help="devices in the storm")
    ap.add_argument("--fires", type=int, default=20, help="fire readings per phase")
    ap.add_argument("--storm", type=float, default=20.0, help="seconds of backfill storm")
    ap.add_argument("--batch", type=int, default=100, help="readings per batch message")
    args = ap.parse_args()

    work = temp_workdir("alert-bench")
    broker = Mosquitto(work / "mosquitto")
    engine: subprocess.Popen[bytes] | None = None
    receiver = Receiver()
    try:
        creds = ensure_service_accounts(broker.passwords, work / "secrets")
        broker.start()
        engine_password = new_secret()
        pw = PasswordFile(broker.passwd_path, reload=broker.reload)
        pw.update({ENGINE: engine_password})
        fire_devices = [f"fire-{q}-{i:03d}" for q in ("quiet", "storm") for i in range(args.fires)]
        storm_devices = [f"storm-{i:04d}" for i in range(args.devices)]
        reg = Registry(work / "registry.sqlite")
        with reg.transaction():
            reg.add_municipality(MUNICIPALITY, "København")
            reg.add_site("site-1", MUNICIPALITY, 55.68, 12.57)
            for d in fire_devices + storm_devices:
                reg.add_bin(f"bin-{d}", "site-1", "residual", 660)
        made = provisioning.provision(
            reg, pw,
            [provisioning.ProvisionRequest(d, f"bin-{d}") for d in fire_devices + storm_devices],
            at_ms=now_ms() - 40 * 86_400_000,
        )
        reg.close()
        passwords = {c.username: c.password for c in made}

        def secret(name: str, value: str) -> Path:
            path = work / name
            path.write_text(value + "\n")
            path.chmod(0o600)
            return path

        settings = Settings(
            registry=RegistrySettings(path=work / "registry.sqlite"),
            # no InfluxDB: the engine learns the devices from their readings
            influxdb=InfluxSettings(url=f"http://127.0.0.1:{free_port()}",
                                    password_env="SMARTBINS_BENCH_UNSET"),
            alerts=AlertSettings(
                mqtt_port=broker.port, password_file=secret("engine", engine_password),
                client_id=f"{ENGINE}-bench", webhook_url=receiver.url,
                webhook_secret_file=secret("hook", new_secret()), offline_check_s=3600,
            ),
        )
        config = work / "api.toml"
        config.write_text(sm.to_toml(settings))
        log = work / "engine.log"
        with open(log, "wb") as out:
            engine = subprocess.Popen(
                [sys.executable, "-m", "backend.alertengine", "--config", str(config)],
                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: "subscribed to the devices' readings" in log.read_text(), 30, 0.1,
                   "the alert engine subscribed")
        gateway = creds[GATEWAY_ACCOUNT]
        watcher = Watcher(broker.port, gateway.username, gateway.password)

        rows = []
        quiet = fire_devices[: args.fires]
        acked = send_fires(broker.port, quiet, passwords, 0.2)
        wait_until(lambda: all(d in receiver.fire for d in quiet), 60, 0.05, "quiet fire alerts")
        rows.append(("quiet", acked, None))

        sent, last_ts = [0], [0]
        loud = fire_devices[args.fires:]
        storm_thread = threading.Thread(
            target=storm,
            args=(broker.port, storm_devices, passwords, args.storm, args.batch, sent, last_ts),
        )
        started = time.monotonic()
        storm_thread.start()
        time.sleep(min(2.0, args.storm / 4))  # the storm is under way
        acked = send_fires(broker.port, loud, passwords, max(args.storm / 2 / args.fires, 0.2))
        storm_thread.join()
        storm_s = time.monotonic() - started
        with contextlib.suppress(TimeoutError):  # a missing alert is reported below
            wait_until(lambda: all(d in receiver.fire for d in loud), 300, 0.1, "storm alerts")
        rows.append(("storm", acked, (sent[0], storm_s)))

        def caught_up() -> bool:
            with Registry(work / "registry.sqlite") as r:
                oldest = r.db.execute("SELECT min(last_ts_ms), count(*) FROM alert_devices"
                                      " WHERE device_id LIKE 'storm-%'").fetchone()
            return oldest[1] == len(storm_devices) and oldest[0] == last_ts[0]

        with contextlib.suppress(TimeoutError):
            wait_until(caught_up, 900, 0.5, "the engine through the storm's backlog")
        drained_s = time.monotonic() - started
        watcher.close()

        if os.environ.get("ALERT_BENCH_LOG"):
            print(log.read_text()[-3000:])
        print(f"\n{len(storm_devices)} storm devices, batches of {args.batch}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (others' work included)\n")
        print(f"{'phase':<7} {'fire -> webhook p50':>20} {'p99':>8} {'max':>8}   "
              f"{'-> plain subscriber p50':>24} {'p99':>8} {'max':>8}  {'alerts':>7}")
        ok = True
        for name, acks, _ in rows:
            hook = [receiver.fire[d] - t for d, t in acks.items() if d in receiver.fire]
            base = [watcher.fire[d] - t for d, t in acks.items() if d in watcher.fire]
            missing = len(acks) - len(hook)
            h50, h99, hmax = quantiles(hook) if hook else (float("nan"),) * 3
            b50, b99, bmax = quantiles(base) if base else (float("nan"),) * 3
            print(f"{name:<7} {h50:>19.3f}s {h99:>7.3f}s {hmax:>7.3f}s   {b50:>23.3f}s "
                  f"{b99:>7.3f}s {bmax:>7.3f}s  {len(hook):>3}/{len(acks)}")
            ok = ok and not missing and hmax < 10
        n, s = rows[1][2]  # type: ignore[misc]
        print(f"\nstorm: {n:,} readings published in {s:.1f} s ({n / s:,.0f}/s); the engine "
              f"had taken them all {drained_s:.1f} s after the storm began "
              f"({n / drained_s:,.0f} readings/s)")
        print(f"target: every fire alert at the webhook within 10 s: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        if engine is not None:
            engine.terminate()
            try:
                engine.wait(15)
            except subprocess.TimeoutExpired:
                engine.kill()
        receiver.server.shutdown()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
