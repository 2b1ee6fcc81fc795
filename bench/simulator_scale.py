"""Simulator at city scale through a real Mosquitto: wakes/s with a real connect each.

One run, printed figures:

1. baseline: sequential device wakes with one paho client per wake (connect, publish a reading
   at QoS 1, PUBACK, disconnect), the obvious way to write a virtual device;
2. the broker's ceiling: the same wake (compact asyncio client), unpaced, 64 at a time, and the
   broker's own CPU time during it (from /proc): achieved wakes/s, and wakes/s per broker CPU
   second = what one broker core could take if the clients cost nothing;
3. the fleet: N provisioned devices (own credentials each) waking every INTERVAL s in real time
   (speed 1) for DURATION s, through simulator.fleet.BrokerFleet, a test acknowledger in its own
   process acknowledging end to end: wakes/s, connects/s, readings acknowledged/s, scheduler
   lag, failures, broker CPU share;
4. memory per device: RSS growth of this process for building the N-device world.

Usage: python bench/simulator_scale.py [--devices 10000] [--interval 10] [--duration 60]
       [--processes 1] [--acknowledgers 2] [--profile FILE]
Target (issue 4): at least 1,000 wakes/s sustained (10,000 devices every 10 s). The steady
rate cannot exceed the offered load (devices / interval; the protocol's shortest interval is
10 s): ``--devices 15000`` offers 1,500 wakes/s to show the headroom, and the CPU per wake of
fleet, broker and acknowledgers gives the machine's capacity independently of other load.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing as mp
import os
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator import faults as fl
from simulator.fleet import BrokerFleet, build_world, provision_fleet
from simulator.mqtt_client import connect
from simulator.world import DeviceDefaults, WorldOptions, start_for
from smartbins import protocol as p
from smartbins.provisioning import (
    GATEWAY_ACCOUNT,
    Credentials,
    ensure_service_accounts,
)
from smartbins.registry import Registry
from smartbins.servers import Mosquitto, temp_workdir

QUIET = fl.FaultRates(**{k.value: 0.0 for k in fl.Kind}, natural_gaps=False,
                      natural_tilt=False)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reading_payload(dev: str, seq: int) -> tuple[str, bytes]:
    return p.encode_message(p.Reading(dev, seq, 1, int(time.time() * 1000), "bench", 10,
                                      distance_mm=800, fill_pct=40.0))


def paho_baseline(port: int, creds: list[tuple[str, str]]) -> float:
    import paho.mqtt.client as mqtt

    t0 = time.perf_counter()
    for k, (dev, pw) in enumerate(creds):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=dev, clean_session=False)
        c.username_pw_set(dev, pw)
        c.will_set(*p.encode_message(p.Status(dev, "lost")), qos=1, retain=True)
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        c.publish(*reading_payload(dev, 10_000 + k), qos=1).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()
    return len(creds) / (time.perf_counter() - t0)


async def _storm(port: int, creds: list[tuple[str, str]], seconds: float, width: int) -> int:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        j = k
        while time.perf_counter() < stop:
            dev, pw = creds[j % len(creds)]
            j += width
            conn = await connect(port, dev, dev, pw, will=p.encode_message(p.Status(dev, "lost")))
            await conn.publish(*reading_payload(dev, 20_000 + j))
            await conn.disconnect()
            done += 1

    await asyncio.gather(*(worker(k) for k in range(width)))
    return done


def acknowledger_process(port: int, user: str, pw: str, ready: mp.Event, stop: mp.Event,
                         count: mp.Value, k: int) -> None:
    from simulator.acknowledger import TestAcknowledger

    ack = TestAcknowledger(port, Credentials(user, pw), client_id=f"bench-ack-{k}").start()
    ready.set()
    while not stop.wait(0.5):
        count.value = ack.store.count()
    count.value = ack.store.count()
    ack.stop()


def fleet_process(k: int, procs: int, n: int, opts: WorldOptions, workdir: Path, port: int,
                  passwords: dict[str, str], duration: float, interval: int, ready: mp.Event,
                  go: mp.Event, results: mp.Queue, profile: str | None) -> None:
    """One shard of the fleet (devices k, k+procs, ...): same seed, so the same world. The
    fleet runs in this process's main thread (so cProfile sees it with ``--profile``); a
    helper thread samples the counters once a second for the steady-state rate."""
    world = build_world(n, opts, workdir / f"truth-{k}.sqlite", device_prefix="kbh")
    fleet = BrokerFleet(world, port, passwords, speed=1.0, only=range(k, n, procs))
    ready.set()
    go.wait(60)
    t0, c0, os0 = time.perf_counter(), time.process_time(), os.times()
    marks: list[tuple[float, int, int]] = []
    ended = threading.Event()

    def sample() -> None:
        while not ended.wait(1.0):
            marks.append((time.perf_counter() - t0, fleet.stats.wakes, fleet.stats.connects))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    prof = cProfile.Profile() if profile else None
    if prof is not None:
        prof.enable()
    try:
        stats = fleet.run(until_s=opts.start_s + duration)
    finally:
        if prof is not None:
            prof.disable()
            prof.dump_stats(f"{profile}.{k}")
        ended.set()
        sampler.join()
    el = time.perf_counter() - t0
    os1 = os.times()
    steady = [m for m in marks if m[0] >= interval + 1]
    if len(steady) >= 2:
        (ta, wa, ca), (tb, wb, cb) = steady[0], steady[-1]
        sw, sc = (wb - wa) / (tb - ta), (cb - ca) / (tb - ta)
    else:
        sw = sc = float("nan")
    world.truth.close()
    results.put({"k": k, "elapsed": el, "cpu": time.process_time() - c0, "steady_wakes": sw,
                 "steady_connects": sc, "user": os1.user - os0.user,
                 "sys": os1.system - os0.system, **stats.__dict__})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", metavar="FILE",
                    help="cProfile each fleet process into FILE.<shard> (pstats format); the "
                         "profiler slows the fleet, so its throughput figures are not the "
                         "fleet's")
    ap.add_argument("--processes", type=int, default=1,
                    help="Fleet processes (shards of the same seeded world)")
    ap.add_argument("--acknowledgers", type=int, default=2,
                    help="Test acknowledger processes sharing $share/gateways (like gateways)")
    args = ap.parse_args()
    n = args.devices
    workdir = temp_workdir("bench-sim")
    broker = Mosquitto(workdir / "mosquitto")
    services = ensure_service_accounts(broker.passwords, workdir / "secrets")
    gw = services[GATEWAY_ACCOUNT]
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    readies = [ctx.Event() for _ in range(args.acknowledgers)]
    counts = [ctx.Value("l", 0) for _ in range(args.acknowledgers)]
    ack_procs: list[mp.Process] = []
    try:
        broker.start()
        print(f"simulator_scale: {n} devices every {args.interval} s for {args.duration:g} s, "
              f"mosquitto on 127.0.0.1:{broker.port} (production config)")
        rss0 = rss_mb()
        days = (args.duration + 60) / 86400
        opts = WorldOptions(seed=args.seed, start_s=start_for(days), days=days, rates=QUIET,
                            fixed_schedule=False,
                            defaults=DeviceDefaults(interval_s=args.interval))
        reg = Registry(workdir / "registry.sqlite")
        t = time.perf_counter()
        world = build_world(n, opts, workdir / "truth.sqlite", reg, devices=False)
        rss1 = rss_mb()
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        passwords = provision_fleet(world, reg, broker.passwords)
        prov_s = time.perf_counter() - t
        print(f"  world built in {build_s:.1f} s; {n} devices provisioned in {prov_s:.1f} s")
        print(f"  memory per device (world, device state, traits): "
              f"{(rss1 - rss0) * 1024 / n:.1f} KiB  (RSS {rss0:.0f} -> {rss1:.0f} MiB)")

        # the baseline and the ceiling run use provisioned devices' own accounts
        probe = list(passwords.items())[:200]
        base = paho_baseline(broker.port, probe[:200])
        print(f"  baseline, paho client per wake, sequential: {base:8.0f} wakes/s")
        cpu0, t0 = cpu_s(broker.proc.pid), time.perf_counter()
        storm = asyncio.run(_storm(broker.port, list(passwords.items())[:2000], 8.0, 64))
        el = time.perf_counter() - t0
        bcpu = cpu_s(broker.proc.pid) - cpu0
        ceiling = storm / bcpu if bcpu > 0 else float("inf")
        print(f"  broker ceiling run (asyncio client, 64 in flight, unpaced): "
              f"{storm / el:8.0f} wakes/s, broker CPU {100 * bcpu / el:.0f}% of a core "
              f"-> {ceiling:,.0f} wakes per broker CPU second")

        for k in range(args.acknowledgers):
            proc = ctx.Process(
                target=acknowledger_process, args=(broker.port, gw.username, gw.password,
                                                   readies[k], stop, counts[k], k), daemon=True)
            proc.start()
            ack_procs.append(proc)
        for r in readies:
            r.wait(20)
        go = ctx.Event()
        results = ctx.Queue()
        shard_ready = [ctx.Event() for _ in range(args.processes)]
        fleets = [
            ctx.Process(target=fleet_process, args=(
                k, args.processes, n, opts, workdir, broker.port, passwords, args.duration,
                args.interval, shard_ready[k], go, results, args.profile), daemon=True)
            for k in range(args.processes)
        ]
        for f in fleets:
            f.start()
        for r in shard_ready:
            r.wait(120)
        cpu0, t0 = cpu_s(broker.proc.pid), time.perf_counter()
        ack0 = [cpu_s(proc.pid) for proc in ack_procs]
        load0 = os.getloadavg()
        go.set()
        parts = [results.get(timeout=args.duration * 4 + 120) for _ in fleets]
        for f in fleets:
            f.join(30)
        el = max(r["elapsed"] for r in parts)
        bcpu = cpu_s(broker.proc.pid) - cpu0
        acpu = sum(cpu_s(proc.pid) - a for proc, a in zip(ack_procs, ack0, strict=True))
        load1 = os.getloadavg()
        time.sleep(1.0)
        stop.set()
        for proc in ack_procs:
            proc.join(20)
        acked = sum(c.value for c in counts)
        tot = {key: sum(r[key] for r in parts) for key in (
            "wakes", "connects", "connect_failures", "wake_errors", "busy_skips",
            "readings_sent", "cpu", "user", "sys", "steady_wakes", "steady_connects")}
        lag = max(r["lag_s"] for r in parts)
        errors: dict[str, int] = {}
        for r in parts:
            for key, v in r["errors"].items():
                errors[key] = errors.get(key, 0) + v
        steady_wakes, steady_conn = tot["steady_wakes"], tot["steady_connects"]
        target = n / args.interval
        print(f"  fleet ({args.processes} processes): {tot['wakes']} wakes in {el:.1f} s = "
              f"{tot['wakes'] / el:,.0f} wakes/s, {tot['connects'] / el:,.0f} connects/s "
              f"(offered {target:,.0f}/s; load average {load0[0]:.2f} at the start, "
              f"{load1[0]:.2f} at the end)")
        print(f"  steady state (after the first interval): {steady_wakes:,.0f} wakes/s, "
              f"{steady_conn:,.0f} network wakes/s (each a real connect, PUBLISH, "
              f"end-to-end ack, DISCONNECT)")
        print(f"  readings: {tot['readings_sent'] / el:,.0f}/s published; {acked} acknowledged "
              f"end to end ({acked / el:,.0f}/s); connect failures {tot['connect_failures']}, "
              f"wake errors {tot['wake_errors']}, busy skips {tot['busy_skips']}, "
              f"max scheduler lag {lag:.2f} s")
        for key, v in sorted(errors.items(), key=lambda kv: -kv[1])[:3]:
            print(f"    {v} x {key}")
        print(f"  CPU: broker {100 * bcpu / el:.0f}% of a core, fleet processes "
              f"{100 * tot['cpu'] / el:.0f}%, {args.acknowledgers} acknowledger processes "
              f"{100 * acpu / el:.0f}% (all on the same {os.cpu_count()} cores)")
        per_wake = tot["cpu"] / max(tot["wakes"], 1)
        per_conn_b = bcpu / max(tot["connects"], 1)
        per_conn_a = acpu / max(tot["connects"], 1)
        whole = per_wake + per_conn_b + per_conn_a
        cores = os.cpu_count() or 1
        wakes = max(tot["wakes"], 1)
        print(f"  fleet CPU per wake: {1000 * tot['user'] / wakes:.2f} ms Python (user), "
              f"{1000 * tot['sys'] / wakes:.2f} ms kernel (sockets on loopback)")
        print(f"  CPU per wake: fleet {1000 * per_wake:.2f} ms, broker "
              f"{1000 * per_conn_b:.2f} ms, acknowledgers {1000 * per_conn_a:.2f} ms -> one "
              f"free core runs {1 / per_wake:,.0f} fleet wakes/s; fleet, broker and "
              f"acknowledgers together fill the {cores} cores at {cores / whole:,.0f} wakes/s")
        print(f"  ratio fleet/baseline: {steady_conn / base:.1f}x; "
              f"sustained/target: {steady_conn / target:.2f}; capacity/target: "
              f"{cores / whole / target:.2f}; broker headroom: "
              f"{ceiling / max(steady_conn, 1):.1f}x the fleet's connect rate")
        world.truth.close()
        reg.close()
        return 0
    finally:
        stop.set()
        for proc in ack_procs:
            if proc.is_alive():
                proc.terminate()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
