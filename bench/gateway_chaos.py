"""The gateway chaos run at fleet scale: DEVICES of the simulator's virtual devices (default
2,000, each waking about every WAKE_EVERY real seconds with a real MQTT connect) publish while
the broker, the gateway process and influxd are each SIGKILLed KILLS times on a seeded schedule
and some devices lose power; then every reading the devices produced (less those a full device
buffer dropped, per the simulator's ground truth) must be in InfluxDB exactly once, counted by
device and seq.

The suite runs the same at 200 devices (tests/gateway/test_gateway_chaos.py).

    .venv/bin/python bench/gateway_chaos.py [--devices 2000] [--seconds 90] [--wake-every 10]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "gateway"))

from gw_chaos import run_chaos  # noqa: E402
from gw_stack import Stack  # noqa: E402


def main() -> int:
    # SIGTERM ends the run through `finally`, so the servers it started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=2000, help="virtual devices (default 2000)")
    ap.add_argument("--seconds", type=float, default=90, help="length of the chaos (default 90)")
    ap.add_argument("--wake-every", type=float, default=10.0,
                    help="real seconds between a device's wakes (default 10)")
    ap.add_argument("--kills", type=int, default=2, help="SIGKILLs per victim (default 2)")
    ap.add_argument("--power-cuts", type=int, default=200, help="device power cuts (default 200)")
    ap.add_argument("--seed", type=int, default=1, help="seed of schedule and devices")
    args = ap.parse_args()
    stack = Stack("bench-chaos")
    try:
        stack.start()
        t0 = time.monotonic()
        result = run_chaos(
            stack,
            stack.workdir,
            devices=args.devices,
            seed=args.seed,
            duration_s=args.seconds,
            kills_each=args.kills,
            wake_every_s=args.wake_every,
            power_cuts=args.power_cuts,
            settle_timeout_s=600,
            progress=lambda s: print(s, flush=True),
        )
        print(result.line())
        ok = (result.doubles, result.missing, result.unexpected, result.mismatched) == (0,) * 4
        ok = ok and result.drained
        print(f"{'PASS' if ok else 'FAIL'}: exactly once ({time.monotonic() - t0:.0f} s in all)")
        return 0 if ok else 1
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
