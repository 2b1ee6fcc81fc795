"""`smartbins demo`: broker and database up, a few devices provisioned, readings landing.

Everything runs on loopback ports chosen free for this run, with data in a temp dir that is
removed afterwards (``--keep`` keeps it). Until the gateway and the simulator exist, a small
loop of protocol messages stands in for the fleet and a minimal ingester for the gateway: it
validates with the protocol module, writes to InfluxDB, and acknowledges end to end only after
the write, as the gateway will.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from smartbins import protocol as p
from smartbins.influx import InfluxClient, InfluxError
from smartbins.provisioning import (
    GATEWAY_ACCOUNT,
    Credentials,
    ProvisionRequest,
    ensure_service_accounts,
    provision,
)
from smartbins.registry import Registry, now_ms
from smartbins.servers import InfluxDB, Mosquitto, temp_workdir, wait_until

# A few real places in central Copenhagen (lat, lon) and what their bins hold.
SITES = [
    ("Kongens Nytorv", 55.6805, 12.5857, "residual", 240),
    ("Nørreport", 55.6833, 12.5713, "paper+cardboard", 660),
    ("Rådhuspladsen", 55.6759, 12.5691, "glass", 1500),
    ("Christianshavn", 55.6727, 12.5942, "plastic+cartons", 660),
    ("Vesterbro Torv", 55.6695, 12.5450, "food", 140),
    ("Østerbro, Trianglen", 55.6997, 12.5775, "metal+plastic", 660),
    ("Nørrebro, Blågårds Plads", 55.6862, 12.5532, "textiles", 1000),
    ("Islands Brygge", 55.6637, 12.5787, "residual", 3000),
]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="Run a small fleet end to end on this machine.",
        description="Start Mosquitto and InfluxDB on free loopback ports, provision a few "
        "devices with their own credentials, and show their readings arriving in InfluxDB. "
        "Nothing outside a temp dir is touched.",
    )
    parser.add_argument(
        "--devices", type=int, default=6, help="How many devices (1-8). Default: 6."
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="How many readings each device sends. Default: 5."
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.5,
        help="Seconds between rounds (simulated hours). Default: 0.5.",
    )
    parser.add_argument("--seed", type=int, default=1, help="Seed for the fill levels. Default: 1.")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temp dir (configs, data, logs) afterwards."
    )
    parser.set_defaults(func=run)


@dataclass
class Ingester:
    """Stand-in for the gateway: validate, write, then acknowledge end to end."""

    port: int
    creds: Credentials
    influx: InfluxClient

    def __post_init__(self) -> None:
        self.stored = 0
        self.rejected = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-ingester")
        self.client.username_pw_set(self.creds.username, self.creds.password)
        self.client.on_connect = lambda c, u, f, rc, props: c.subscribe(
            p.shared_subscription(), qos=1
        )
        self.client.on_message = self.on_message

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            decoded = p.parse_message(msg.topic, msg.payload)
        except p.PayloadError as e:
            print(f"  rejected {msg.topic}: {e.reason.value}: {e}", file=sys.stderr)
            with self.lock:
                self.rejected += 1
            return
        if isinstance(decoded, p.Reading):
            readings: tuple[p.Reading, ...] = (decoded,)
        elif isinstance(decoded, p.ReadingBatch):
            readings = decoded.readings
        else:
            return
        try:
            self.influx.write_lines(p.to_line(p.reading_point(r)) for r in readings)
        except InfluxError as e:
            print(f"  write failed ({e}); the device will resend", file=sys.stderr)
            return
        ack = p.Ack(readings[0].device, now_ms(), p.ranges_from_seqs(r.seq for r in readings))
        client.publish(*p.encode_message(ack), qos=1)
        with self.lock:
            self.stored += len(readings)


def _device_client(port: int, cred: Credentials, acked: dict[str, set[int]]) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=cred.username, clean_session=False
    )
    client.username_pw_set(cred.username, cred.password)
    will_topic, will = p.encode_message(p.Status(cred.username, "lost"))
    client.will_set(will_topic, will, qos=1, retain=True)

    def on_connect(
        c: mqtt.Client, u: object, flags: mqtt.ConnectFlags, rc: object, props: object
    ) -> None:
        if not flags.session_present:
            c.subscribe(
                [(p.topic_for("ack", cred.username), 1), (p.topic_for("config", cred.username), 1)]
            )

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        decoded = p.parse_message(msg.topic, msg.payload)
        if isinstance(decoded, p.Ack):
            acked[cred.username].update(s for lo, hi in decoded.stored for s in range(lo, hi + 1))

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def run(args: argparse.Namespace) -> int:
    n = max(1, min(args.devices, len(SITES)))
    rng = random.Random(args.seed)
    workdir = temp_workdir("demo")
    broker = Mosquitto(workdir / "mosquitto")
    influx = InfluxDB(workdir / "influxdb")
    print(f"smartbins demo: working in {workdir}")
    clients: list[mqtt.Client] = []
    ingester: Ingester | None = None
    try:
        services = ensure_service_accounts(broker.passwords, workdir / "secrets")
        broker.start()
        print(f"  mosquitto {broker.port} (production config: no anonymous access, per-device ACL)")
        influx.start()
        print(f"  influxd   {influx.url} (auth on, database '{influx.database}')")

        registry = Registry(workdir / "registry.sqlite")
        registry.add_municipality("0101", "Københavns Kommune")
        requests = []
        for i, (name, lat, lon, stream, volume) in enumerate(SITES[:n]):
            registry.add_site(f"site-{i}", "0101", lat, lon, name)
            registry.add_bin(f"bin-{i}", f"site-{i}", stream, volume)
            requests.append(ProvisionRequest(f"kbh-{i:04d}", f"bin-{i}"))
        creds = provision(registry, broker.passwords, requests)
        print(f"  provisioned {len(creds)} devices, each with its own password (not shown)")

        ingester = Ingester(broker.port, services[GATEWAY_ACCOUNT], influx.client())
        ingester.start()
        acked: dict[str, set[int]] = {c.username: set() for c in creds}
        clients = [_device_client(broker.port, c, acked) for c in creds]

        fill = {c.username: rng.uniform(5, 40) for c in creds}
        t0 = now_ms() - args.rounds * 3_600_000
        for rnd in range(args.rounds):
            for seq_client, c in zip(clients, creds, strict=True):
                fill[c.username] += rng.uniform(2, 12)
                level = fill[c.username]
                reading = p.Reading(
                    device=c.username,
                    seq=rnd,
                    boot=1,
                    ts_ms=t0 + rnd * 3_600_000,
                    fw="demo-0.1",
                    interval_s=3600,
                    distance_mm=int(1000 * (1 - level / 100)) if level < 100 else 0,
                    fill_pct=round(level, 1),
                    temp_c=round(rng.uniform(4, 9), 1),
                    battery_mv=3700 - rnd,
                    rssi_dbm=-60 - rng.randrange(20),
                    flags=int(p.Flag.NEAR_FULL) if level >= 80 else 0,
                )
                seq_client.publish(*p.encode_message(reading), qos=1)
            time.sleep(args.pause)
            print(f"  round {rnd + 1}/{args.rounds}: {ingester.stored} readings stored in InfluxDB")

        expected = n * args.rounds
        wait_until(
            lambda: all(len(a) == args.rounds for a in acked.values()),
            30,
            message="all readings acknowledged",
        )
        _print_table(influx.client(), registry, [c.username for c in creds])
        print(
            f"\n{expected} readings sent, {ingester.stored} stored, {ingester.rejected} rejected; "
            "every reading acknowledged end to end."
        )
        return 0
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        if ingester:
            ingester.stop()
        influx.stop()
        broker.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


ROW = "{:<10} {:<6} {:<17} {:<26} {:>8} {:>7} {:>5}"


def _print_table(client: InfluxClient, registry: Registry, devices: list[str]) -> None:
    series = client.query(
        f"SELECT count(seq), last(fill), last(temp) FROM {p.MEASUREMENT} GROUP BY {p.DEVICE_TAG}"
    )
    by_device = {s["tags"][p.DEVICE_TAG]: s["values"][0] for s in series}
    header = ("device", "bin", "stream", "site", "readings", "fill %", "°C")
    print("\n" + ROW.format(*header))
    for dev in devices:
        _, count, fill, temp = by_device.get(dev, (0, 0, float("nan"), float("nan")))
        link = registry.current_link(dev)
        b = registry.bin(link.bin_id) if link else None
        site = (
            registry.db.execute("SELECT name FROM sites WHERE id = ?", (b.site_id,)).fetchone()[0]
            if b
            else ""
        )
        print(
            ROW.format(
                dev,
                b.id if b else "-",
                b.stream if b else "-",
                site,
                count,
                f"{fill:.1f}",
                f"{temp:.1f}",
            )
        )
