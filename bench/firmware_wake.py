"""How long each step of a firmware wake takes on the MicroPython Unix port against a real
Mosquitto (with a test acknowledger in the gateway's place), next to a baseline: paho-mqtt in
CPython doing the same MQTT exchange (connect, publish QoS 1, wait for the end-to-end ack,
disconnect). docs/firmware.md turns these figures into the energy budget.

Sensor and Wi-Fi steps run on the fake hardware's injected clock (the ESP32 driver's waits and
an assumed association time), so only store, connect, sync, publish and close are measured.

Run: .venv/bin/python bench/firmware_wake.py [WAKES]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "firmware"))

from fwtools import Acknowledger, FakeDevice, Fleet  # noqa: E402

from smartbins import protocol as p  # noqa: E402
from smartbins.registry import now_ms  # noqa: E402
from smartbins.servers import temp_workdir  # noqa: E402

STEPS = ("measure", "store", "wifi", "ntp", "connect", "sync", "publish", "close")


def paho_cycle(port: int, dev: str, password: str, seq: int) -> float:
    """One device-like MQTT session in CPython; returns its wall time [ms]."""
    t0 = time.perf_counter()
    acked = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=dev, clean_session=False)
    c.username_pw_set(dev, password)
    c.on_message = lambda cl, u, m: acked.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(p.topic_for("ack", dev), 1)
    r = p.Reading(dev, seq, 1, now_ms(), "paho", 3600, distance_mm=800, fill_pct=20.0)
    c.publish(*p.encode_message(r), qos=1).wait_for_publish(5)
    acked.wait(5)
    c.disconnect()
    c.loop_stop()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    wakes = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    workdir = temp_workdir("bench-fw")
    fleet = Fleet(workdir)
    fleet.start()
    acker = Acknowledger(fleet.port, fleet.gateway)
    try:
        acker.wait_ready()
        dev_dir = workdir / "device"
        dev_dir.mkdir()
        dev = FakeDevice(dev_dir)
        fleet.provision("bench-fw", "bin-0", dev)
        acker.now = dev.true_now
        dev.scenario(wifi_ms=2000)
        walls = []
        for _ in range(wakes):
            t0 = time.perf_counter()
            dev.run(1)
            walls.append((time.perf_counter() - t0) * 1000)
        dev.scenario(wifi=False)
        offline = []
        for _ in range(10):
            t0 = time.perf_counter()
            dev.run(1)
            offline.append((time.perf_counter() - t0) * 1000)
        wall = statistics.median(walls)
        steps = [w["steps"] for w in dev.wakes()[1:wakes]]  # the first wake also subscribes
        print(f"firmware wake on the Unix port, {len(steps)} wakes (median ms per step):")
        for name in STEPS:
            vals = [s.get(name, 0) for s in steps]
            kind = "injected" if name in ("measure", "wifi", "ntp") else "measured"
            print(f"  {name:<8} {statistics.median(vals):8.1f}  ({kind})")
        mqtt_ms = statistics.median(
            sum(s.get(k, 0) for k in ("connect", "sync", "publish", "close")) for s in steps
        )
        print(f"  MQTT session (connect..close): {mqtt_ms:.1f} ms")
        print(f"  process wall time per wake: {wall:.1f} ms (micropython start to exit, median)")
        print(f"  the same without network (Wi-Fi off): {statistics.median(offline):.1f} ms")
        assert len(acker.seqs("bench-fw")) == wakes
        fleet.provision("bench-paho", "bin-1", FakeDevice(workdir))
        password = (fleet.configs / "bench-paho" / "config.json").read_text()
        import json

        password = json.loads(password)["password"]
        base = statistics.median(
            paho_cycle(fleet.port, "bench-paho", password, i) for i in range(wakes)
        )
        print(f"baseline paho-mqtt (CPython) session: {base:.1f} ms")
        print(f"ratio firmware MQTT session / paho baseline: {mqtt_ms / base:.2f}")
    finally:
        acker.close()
        fleet.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
