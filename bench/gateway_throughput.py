"""Gateway throughput, in one run, on this machine (all on loopback, own servers):

(a) the broker's ceiling: publishers send one reading per message (the live case) into a
    subscriber that does nothing (paho, QoS 1, auto-acknowledged): messages per second.
(b) end to end with the same publishers and messages: publishers -> Mosquitto -> gateway
    (``smartbins gateway`` process) -> InfluxDB: readings per second until the last one is
    stored, with a final count check. Target: at least 50 % of (a). Run twice: with one
    gateway process, and with ``[process] workers = --workers`` (default: the CPU count).
(c) the backfill storm: DEVICES devices, each holding 100 buffered readings, reconnect at once
    and send them in the protocol's batch form (2 batches of 50): time until every reading is
    in InfluxDB and its end-to-end acknowledgement was published (an observer account reads
    ``sb/down/+/ack``), and the loss count. Target: 1,000,000 readings in under 120 s, no loss.

Publishers are raw MQTT 3.1.1 sockets in worker processes (a minimal client: CONNECT,
pipelined QoS 1 PUBLISH, PUBACK), so that the Python publishers are not what is measured.

    .venv/bin/python bench/gateway_throughput.py [--devices 10000] [--live-devices 500]
        [--workers N] [--gateways 1]

``--auth`` measures instead what the broker plugin (broker/smartbins_auth.c: client ids and
subscriptions) costs: the same steps on a broker with the production configuration and on one
without the plugin (the configuration before it), alternating, ``--rounds`` times each:
devices connecting (CONNECT to CONNACK, one connection per device at a time, as a wake does),
(a) the ceiling, and (b) end to end with one gateway process; and the broker's own CPU time
per connect and per message of (a), which other work on the machine disturbs far less.

    .venv/bin/python bench/gateway_throughput.py --auth [--connect-devices 2000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "gateway"))

import paho.mqtt.client as mqtt  # noqa: E402
from gw_fleet import BASE_TS_MS, provision_fleet  # noqa: E402
from gw_stack import Stack  # noqa: E402
from gw_storm import OBSERVER_ACL, OBSERVER_CONF, AckObserver, add_observer  # noqa: E402

from smartbins import protocol as p  # noqa: E402
from smartbins import storage  # noqa: E402
from smartbins.servers import wait_until  # noqa: E402

# --------------------------------------------------------------------------- raw MQTT 3.1.1


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _connect_packet(client_id: str, user: str, password: str) -> bytes:
    body = _str("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
    body += _str(client_id) + _str(user) + _str(password)
    return b"\x10" + _varint(len(body)) + body


def _publish_packet(topic: str, pid: int, payload: bytes) -> bytes:
    body = _str(topic) + struct.pack("!H", pid) + payload
    return b"\x32" + _varint(len(body)) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def _read_packets(sock: socket.socket, count: int) -> None:
    """Read ``count`` 4-byte packets (CONNACK/PUBACK)."""
    _recv_exact(sock, 4 * count)


def _connect(port: int, dev: str, password: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(_connect_packet(dev, dev, password))
    ack = _recv_exact(s, 4)
    if ack[3] != 0:
        raise ConnectionError(f"{dev}: CONNACK {ack[3]}")
    return s


def reading_payload(dev: str, seq: int) -> bytes:
    r = p.Reading(
        dev, seq, 1, BASE_TS_MS + seq * 60_000, "1.0.0", 3600, distance_mm=812,
        fill_pct=63.5, temp_c=7.2, tilt_deg=2.0, battery_mv=3712, rssi_dbm=-71,
    )  # fmt: skip
    return p.encode_message(r)[1]


def live_publisher(port: int, devices: list[tuple[str, str]], per_device: int, window: int,
                   start: mp.Event) -> None:  # fmt: skip
    """Each device sends ``per_device`` single-reading messages, ``window`` in flight."""
    socks = [(dev, _connect(port, dev, pw)) for dev, pw in devices]
    payloads = {dev: [reading_payload(dev, s) for s in range(per_device)] for dev, _ in devices}
    start.wait()
    for base in range(0, per_device, window):
        n = min(window, per_device - base)
        for dev, s in socks:
            topic = p.topic_for("reading", dev)
            s.sendall(b"".join(
                _publish_packet(topic, base + k + 1, payloads[dev][base + k]) for k in range(n)
            ))  # fmt: skip
        for _, s in socks:
            _read_packets(s, n)
    for _, s in socks:
        s.sendall(b"\xe0\x00")
        s.close()


def storm_backlog(dev: str, per_device: int) -> list[tuple[str, bytes]]:
    """A device's buffered readings as the protocol's batch messages (built with json directly:
    the protocol module's encoder is not what this measures; the gateway validates them)."""
    items = [
        {"seq": q, "boot": 1, "ts": BASE_TS_MS + q * 60_000, "mm": 812, "fill": 63.5,
         "temp": 7.2, "tilt": 2.0, "bat": 3712, "rssi": -71, "dropped": 0, "interval": 3600,
         "cal": 0, "fw": "1.0.0", "flags": 0}
        for q in range(per_device)
    ]  # fmt: skip
    step = p.DEVICE_BATCH_READINGS
    topic = p.topic_for("batch", dev)
    return [
        (topic, json.dumps({"v": 1, "dev": dev, "readings": items[i : i + step]},
                           separators=(",", ":")).encode())
        for i in range(0, per_device, step)
    ]  # fmt: skip


def storm_publisher(port: int, devices: list[tuple[str, str]], per_device: int,
                    start: mp.Event, concurrency: int = 50) -> None:  # fmt: skip
    """Devices reconnect ``concurrency`` at a time per process: connect, send the backlog as
    batches of 50, wait for the PUBACKs, disconnect. Payloads are built before the clock
    starts (a device has them in flash)."""
    backlog = []
    for dev, pw in devices:
        batches = storm_backlog(dev, per_device)
        packets = b"".join(_publish_packet(t, i + 1, pl) for i, (t, pl) in enumerate(batches))
        backlog.append((dev, pw, packets, len(batches)))
    start.wait()
    for k in range(0, len(backlog), concurrency):
        group = backlog[k : k + concurrency]
        socks = [_connect(port, dev, pw) for dev, pw, _, _ in group]
        for s, (_, _, packets, _) in zip(socks, group, strict=True):
            s.sendall(packets)
        for s, (_, _, _, n) in zip(socks, group, strict=True):
            _read_packets(s, n)
            s.sendall(b"\xe0\x00")
            s.close()


# --------------------------------------------------------------------------- receivers


def null_subscriber(port: int, user: str, password: str, expected: int, done: mp.Event,
                    ready: mp.Event) -> None:  # fmt: skip
    count = 0
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-bench-null", protocol=mqtt.MQTTv5
    )
    c.username_pw_set(user, password)

    def on_message(client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count >= expected:
            done.set()

    c.on_message = on_message
    c.on_subscribe = lambda *a: ready.set()
    c.on_connect = lambda client, *a: client.subscribe("$share/bench/" + p.GATEWAY_TOPIC_FILTER, 1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    done.wait()
    c.disconnect()
    c.loop_stop()


def ack_observer(port: int, password: str, devices: int, per_device: int, done: mp.Event,
                 ready: mp.Event, acked_out: mp.Value) -> None:  # fmt: skip
    """In its own process (off the measured processes' cores as far as two allow): counts the
    seqs covered by end-to-end acknowledgements (gw_storm.AckObserver)."""
    observer = AckObserver(port, password)
    ready.set()
    try:
        while not done.is_set():
            acked_out.value = observer.total()
            if acked_out.value >= devices * per_device:
                done.set()
            time.sleep(0.05)
    finally:
        observer.close()


# --------------------------------------------------------------------------- phases


def split(items: list, n: int) -> list[list]:
    return [items[i::n] for i in range(n)]


def written(stack: Stack) -> float:
    """Readings written (2xx) by all gateways, from their /metrics."""
    return sum(gw.metric("gateway_readings_written_total") for gw in stack.gateways)


def count_readings(stack: Stack) -> int:
    series = stack.influx.client().query(f"SELECT count(seq) FROM {storage.MEASUREMENT}")
    return int(series[0]["values"][0][1]) if series else 0


def phase_a(stack: Stack, devs: list[tuple[str, str]], per_device: int, procs: int) -> float:
    ctx = mp.get_context("fork")
    done, ready, start = ctx.Event(), ctx.Event(), ctx.Event()
    total = len(devs) * per_device
    gw = stack.creds["smartbins.gateway"]
    sub = ctx.Process(
        daemon=True,
        target=null_subscriber,
        args=(stack.broker.port, gw.username, gw.password, total, done, ready),
    )
    sub.start()
    ready.wait(10)
    pubs = [
        ctx.Process(
            daemon=True,
            target=live_publisher,
            args=(stack.broker.port, part, per_device, 20, start),
        )
        for part in split(devs, procs)
    ]
    for pr in pubs:
        pr.start()
    time.sleep(1.0)  # let every publisher connect before the clock starts
    t0 = time.monotonic()
    start.set()
    if not done.wait(300):
        raise TimeoutError("(a) the null subscriber did not receive everything")
    dt = time.monotonic() - t0
    for pr in (*pubs, sub):
        pr.join(30)
    return total / dt


def phase_b(
    stack: Stack, devs: list[tuple[str, str]], per_device: int, procs: int
) -> tuple[float, int]:
    ctx = mp.get_context("fork")
    start = ctx.Event()
    total = len(devs) * per_device
    pubs = [
        ctx.Process(
            daemon=True,
            target=live_publisher,
            args=(stack.broker.port, part, per_device, 20, start),
        )
        for part in split(devs, procs)
    ]
    for pr in pubs:
        pr.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    start.set()
    wait_until(lambda: written(stack) >= total, 600, 0.05)
    dt = time.monotonic() - t0
    for pr in pubs:
        pr.join(30)
    return total / dt, count_readings(stack)


def phase_c(stack: Stack, devs: list[tuple[str, str]], per_device: int, procs: int,
            observer_pw: str) -> tuple[float, float, int, int]:  # fmt: skip
    ctx = mp.get_context("fork")
    done, ready, start = ctx.Event(), ctx.Event(), ctx.Event()
    acked = ctx.Value("q", 0)
    obs = ctx.Process(
        daemon=True,
        target=ack_observer,
        args=(stack.broker.port, observer_pw, len(devs), per_device, done, ready, acked),
    )
    obs.start()
    ready.wait(10)
    base = written(stack)
    total = len(devs) * per_device
    pubs = [
        ctx.Process(
            daemon=True, target=storm_publisher, args=(stack.broker.port, part, per_device, start)
        )
        for part in split(devs, procs)
    ]
    for pr in pubs:
        pr.start()
    time.sleep(2 + len(devs) / 2000)  # the publishers build their payloads before the clock
    t0 = time.monotonic()
    start.set()
    last = 0.0
    while not done.is_set():
        now = time.monotonic() - t0
        if now - last >= 10:
            last = now
            n = written(stack) - base
            print(f"   {now:5.0f} s: {n:9.0f} written, {acked.value:9d} acknowledged",
                  flush=True)  # fmt: skip
        if now > 900:
            raise TimeoutError("(c) the storm did not finish within 900 s")
        done.wait(0.2)
    dt_acked = time.monotonic() - t0
    for pr in pubs:
        pr.join(60)
    obs.join(10)
    stored = count_readings(stack)
    return dt_acked, total / dt_acked, stored, total - stored


def connect_all(port: int, devices: list[tuple[str, str]], done: mp.Queue) -> None:
    """Connect each device in turn (CONNECT, CONNACK, DISCONNECT), as devices waking do."""
    for dev, pw in devices:
        s = _connect(port, dev, pw)
        s.sendall(b"\xe0\x00")
        s.close()
    done.put(len(devices))


def phase_connect(stack: Stack, devs: list[tuple[str, str]], procs: int) -> float:
    """Connects per second, ``procs`` processes each connecting its share one after another."""
    ctx = mp.get_context("fork")
    done = ctx.Queue()
    workers = [ctx.Process(daemon=True, target=connect_all, args=(stack.broker.port, part, done))
               for part in split(devs, procs)]  # fmt: skip
    t0 = time.monotonic()
    for w in workers:
        w.start()
    n = sum(done.get(timeout=300) for _ in workers)
    dt = time.monotonic() - t0
    for w in workers:
        w.join(10)
    return n / dt


def broker_cpu_s(stack: Stack) -> float:
    """CPU seconds (user + system) the broker process has used so far: what the plugin adds
    shows here even when other work on the machine makes the rates noisy."""
    assert stack.broker.proc is not None
    fields = Path(f"/proc/{stack.broker.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compare_auth(args: argparse.Namespace) -> int:
    """The plugin's cost: both broker configurations, alternating, in this one run."""
    results: dict[str, list[tuple[float, ...]]] = {"without plugin": [], "plugin": []}
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    for rnd in range(args.rounds):
        for label, plugin in (("without plugin", False), ("plugin", True)):
            stack = Stack(f"bench-auth-{rnd}-{plugin:d}", plugin=plugin)
            try:
                stack.start()
                registry = stack.workdir / "registry.sqlite"
                creds = provision_fleet(
                    str(registry), stack.broker.passwords, "auth", args.connect_devices
                )
                devs = [(c.username, c.password) for c in creds]
                live = devs[: args.live_devices]
                cpu0 = broker_cpu_s(stack)
                connects = phase_connect(stack, devs, args.procs)
                cpu1 = broker_cpu_s(stack)
                ceiling = phase_a(stack, live, args.live_messages, args.procs)
                cpu2 = broker_cpu_s(stack)
                us_connect = (cpu1 - cpu0) / len(devs) * 1e6
                us_message = (cpu2 - cpu1) / (len(live) * args.live_messages) * 1e6
                gw = stack.add_gateway("gw", mqtt={"keepalive_s": 30}, process={"workers": 1})
                gw.start()
                gw.wait_healthy(30)
                e2e, stored = phase_b(stack, live, args.live_messages, args.procs)
                assert stored == len(live) * args.live_messages, stored
                results[label].append((connects, ceiling, e2e, us_connect, us_message))
                print(f"round {rnd + 1} {label:>14}: {connects:8,.0f} connects/s, "
                      f"(a) {ceiling:8,.0f} messages/s, (b) {e2e:8,.0f} readings/s; broker CPU "
                      f"{us_connect:6.1f} us/connect, {us_message:5.1f} us/message in (a)",
                      flush=True)  # fmt: skip
            finally:
                stack.close()
        print(f"   load average {os.getloadavg()[0]:.2f}", flush=True)
    print("median of the rounds (plugin against the configuration without it, same run):")
    names = ("connects/s", "(a) messages/s", "(b) readings/s", "broker us/connect",
             "broker us/message")  # fmt: skip
    for i, name in enumerate(names):
        old = statistics.median(r[i] for r in results["without plugin"])
        new = statistics.median(r[i] for r in results["plugin"])
        print(f"  {name:>17}: without {old:9,.1f}   with {new:9,.1f}   ({new / old - 1:+.1%})")
    return 0


def main() -> int:
    # SIGTERM ends the run through `finally`, so the servers it started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=10_000, help="storm devices (default 10000)")
    ap.add_argument("--per-device", type=int, default=100, help="storm backlog per device")
    ap.add_argument("--live-devices", type=int, default=500, help="publishers in (a) and (b)")
    ap.add_argument("--live-messages", type=int, default=100, help="messages per live device")
    ap.add_argument("--procs", type=int, default=2, help="publisher processes")
    ap.add_argument(
        "--gateways", type=int, default=1, help="gateway commands sharing the subscription"
    )
    ap.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="[process] workers of each gateway (default: the CPU count); (b) also runs with 1",
    )
    ap.add_argument("--auth", action="store_true",
                    help="measure the broker plugin's cost against the configuration without it")
    ap.add_argument("--connect-devices", type=int, default=2000,
                    help="devices that connect once each in --auth (default 2000)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each configuration (--auth)")
    args = ap.parse_args()
    if args.auth:
        return compare_auth(args)

    stack = Stack("bench-gw", extra_acl=OBSERVER_ACL, extra_conf=OBSERVER_CONF)
    try:
        observer_pw = add_observer(stack)
        stack.start()
        t = time.monotonic()
        registry = stack.workdir / "registry.sqlite"
        creds = provision_fleet(str(registry), stack.broker.passwords, "bench", args.devices)
        devs = [(c.username, c.password) for c in creds]
        print(f"provisioned {len(devs)} devices in {time.monotonic() - t:.1f} s; "
              f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
        live = devs[: args.live_devices]
        n_live = len(live) * args.live_messages

        print(f"(a) broker ceiling: {len(live)} devices x {args.live_messages} single-reading "
              "messages, QoS 1, into a subscriber that does nothing", flush=True)  # fmt: skip
        ceiling = phase_a(stack, live, args.live_messages, args.procs)
        print(f"    {ceiling:,.0f} messages/s", flush=True)

        client = stack.influx.client()

        def fresh_database() -> None:
            client.execute(f'DROP DATABASE "{stack.influx.database}"')
            client.execute(f'CREATE DATABASE "{stack.influx.database}"')

        def start_gateways(label: str, workers: int) -> list:
            # each configuration its own shared-subscription group, so the sessions of the
            # gateways stopped before (kept by the broker until they expire) get no share
            gws = [
                stack.add_gateway(
                    f"{label}{i}",
                    mqtt={"keepalive_s": 30, "group": label},
                    process={"workers": workers},
                )
                for i in range(args.gateways)
            ]
            for gw in gws:
                gw.start()
            for gw in gws:
                gw.wait_healthy(30)
            return gws

        results_b = []
        for workers in sorted({1, args.workers}):
            gws = start_gateways(f"b{workers}w", workers)
            print(
                f"(b) end to end: same publishers -> mosquitto -> {args.gateways} gateway "
                f"command(s) with {workers} worker process(es) each -> influxdb",
                flush=True,
            )
            e2e, stored_b = phase_b(stack, live, args.live_messages, args.procs)
            ok_b = "ok" if stored_b == n_live else f"MISMATCH: {stored_b} of {n_live}"
            print(f"    {e2e:,.0f} readings/s = {e2e / ceiling:.0%} of (a) (target >= 50%); "
                  f"count check: {stored_b} stored ({ok_b})", flush=True)  # fmt: skip
            results_b.append((workers, e2e))
            for gw in gws:
                gw.stop()
            stack.gateways = [g for g in stack.gateways if g not in gws]
            fresh_database()
        workers, e2e = results_b[-1]
        gws = start_gateways("storm", args.workers)

        n_storm = len(devs) * args.per_device
        print(
            f"(c) backfill storm: {len(devs)} devices x {args.per_device} readings "
            f"= {n_storm:,} readings in batches of {p.DEVICE_BATCH_READINGS}",
            flush=True,
        )
        took, rate, stored_c, lost = phase_c(stack, devs, args.per_device, 4, observer_pw)
        verdict = "met" if took < 120 and lost == 0 else "NOT met"
        print(f"    every reading stored and acknowledged after {took:.1f} s ({rate:,.0f} "
              f"readings/s); {stored_c:,} stored, loss {lost} (target < 120 s, 0 loss: "
              f"{verdict})", flush=True)  # fmt: skip
        logs = "".join(gw.log() for gw in gws)
        warnings = [ln for ln in logs.splitlines() if " WARNING " in ln or " ERROR " in ln]
        print(f"gateway log: {len(warnings)} warnings/errors", *warnings[:10], sep="\n  ")
        b_all = "; ".join(f"{w} worker(s) {r:,.0f} readings/s ({r / ceiling:.0%})"
                          for w, r in results_b)
        print(f"summary: ceiling {ceiling:,.0f} msg/s; end to end {b_all}; "
              f"storm ({workers} workers) {n_storm:,} in {took:.1f} s, loss {lost}")  # fmt: skip
        return 0
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
