"""The backfill storm with the simulator's virtual devices: DEVICES devices (default 10,000)
wake offline until each holds PER_DEVICE readings (default 100: 1,000,000 in all), then all
reconnect at once through the real Mosquitto, each with its own credentials, and send their
backlog in the protocol's batch form; the gateway (``[process] workers`` = the CPU count) stores
them. Prints the time until every reading is in InfluxDB and covered by a published end-to-end
acknowledgement, and the loss and double counts against the simulator's ground truth.

Unlike (c) of bench/gateway_throughput.py, whose raw-socket publishers cost almost nothing,
the devices here are Python (connect, encode, publish) on the same machine as the gateway, so
this is the storm as the simulator can make it, not the gateway's ceiling.

    .venv/bin/python bench/gateway_storm_sim.py [--devices 10000] [--per-device 100]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "gateway"))

from gw_stack import Stack  # noqa: E402
from gw_storm import OBSERVER_ACL, OBSERVER_CONF, add_observer, run_storm  # noqa: E402


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--per-device", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    stack = Stack("bench-storm-sim", extra_acl=OBSERVER_ACL, extra_conf=OBSERVER_CONF)
    try:
        password = add_observer(stack)
        stack.start()
        gw = stack.add_gateway("storm", process={"workers": args.workers})
        gw.start()
        gw.wait_healthy(30)
        t0 = time.monotonic()
        result = run_storm(
            stack, stack.workdir, password, devices=args.devices, per_device=args.per_device,
            seed=args.seed, timeout_s=900, progress=lambda s: print(s, flush=True),
        )  # fmt: skip
        print(result.line())
        lost = result.produced - result.stored + result.doubles
        ok = (result.doubles, result.missing, result.unexpected, result.mismatched) == (0,) * 4
        print(f"{'PASS' if ok else 'FAIL'}: {result.produced:,} readings, loss {lost}, "
              f"stored and acknowledged after {result.seconds:.1f} s (target < 120 s) with "
              f"{args.workers} gateway workers; {time.monotonic() - t0:.0f} s in all")  # fmt: skip
        return 0 if ok else 1
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
