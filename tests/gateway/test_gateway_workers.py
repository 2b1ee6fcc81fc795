"""``[process] workers = 2``: one `smartbins gateway` command, two gateway processes on the
shared subscription. Both take messages, /metrics is their sum, a dead worker is restarted,
and a SIGKILLed supervisor takes its workers with it; every reading lands exactly once."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from gw_fleet import Fleet, provision_fleet
from gw_stack import Stack, assert_exactly_once, drive, http_get

from smartbins.servers import wait_until


def _worker_pids(supervisor_pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == supervisor_pid:
                out.append(int(entry))
    return sorted(out)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _workers_health(port: int) -> dict[str, dict[str, object]]:
    _, body = http_get(port, "/healthz")
    return {k: v for k, v in json.loads(body).items() if k.startswith("worker_")}


def test_two_workers_share_restart_and_die_with_the_supervisor(registry_path: Path) -> None:
    stack = Stack("gw-workers")
    try:
        stack.start()
        gw = stack.add_gateway("w", process={"workers": 2}, mqtt={"session_expiry_s": 5})
        gw.start()
        gw.wait_healthy(30)
        assert gw.proc is not None
        workers = _worker_pids(gw.proc.pid)
        assert len(workers) == 2, workers
        assert set(_workers_health(gw.port)) == {"worker_1", "worker_2"}

        creds = provision_fleet(str(registry_path), stack.broker.passwords, "wk", 20)
        fleet = Fleet(creds, stack.broker.port, seed=7, resend_timeout_s=2.0)
        try:
            fleet.start()
            wait_until(fleet.connected, 15, message="devices connected")
            for _ in range(10):
                fleet.produce(1)
                fleet.pump()
                time.sleep(0.05)
            drive(fleet, lambda: fleet.pending() == 0, 30)
            # /metrics is the sum of both workers; both took a share
            wait_until(lambda: gw.metric("gateway_readings_written_total") >= 200, 5,
                       message="summed metrics")  # fmt: skip
            assert gw.metric("gateway_mqtt_connected") == 2
            assert gw.metric("gateway_workers") == 2
            # Both took a share: wait for each worker's report to show it (reports are periodic).
            def took() -> dict[str, float]:
                return {k: float(h["messages_received"])  # type: ignore[arg-type]
                        for k, h in _workers_health(gw.port).items()}  # fmt: skip

            wait_until(lambda: all(n >= 40 for n in took().values()), 10,
                       message="each worker reports 40 messages or more")  # fmt: skip
            print(f"workers: messages taken {took()}")

            # a worker dies: the supervisor starts it again; nothing is lost meanwhile
            os.kill(workers[0], 9)
            for _ in range(5):
                fleet.produce(1)
                fleet.pump()
                time.sleep(0.1)
            wait_until(lambda: gw.metric("gateway_worker_restarts_total") == 1, 10,
                       message="worker restarted")  # fmt: skip
            gw.wait_healthy(30)
            drive(fleet, lambda: fleet.pending() == 0, 40)
            counts = assert_exactly_once(stack, fleet)
            assert counts["readings"] == 20 * 15

            # the supervisor is SIGKILLed: its workers stop by themselves, none is orphaned
            current = _worker_pids(gw.proc.pid)
            assert len(current) == 2
            gw.kill()
            wait_until(lambda: not any(_alive(pid) for pid in current), 15,
                       message="workers gone after their supervisor")  # fmt: skip
            # and a new gateway takes over the same sessions
            gw.start()
            gw.wait_healthy(30)
            fleet.produce(2)
            fleet.pump()
            drive(fleet, lambda: fleet.pending() == 0, 30)
            assert assert_exactly_once(stack, fleet)["readings"] == 20 * 17
        finally:
            fleet.close()
        log = gw.log()
        assert "Traceback" not in log, log[-3000:]
        assert "[worker 1]" in log and "[worker 2]" in log
    finally:
        stack.close()
