"""A backfill storm from the simulator's virtual devices: 300 devices, each holding 100
buffered readings after an outage, reconnect at once and send them as batches; every reading
is stored exactly once and acknowledged end to end. ``bench/gateway_throughput.py`` (c) and
``bench/gateway_storm_sim.py`` run storms at 10,000 devices."""

from __future__ import annotations

import pytest
from gw_stack import Stack, points_requested
from gw_storm import OBSERVER_ACL, OBSERVER_CONF, add_observer, run_storm


@pytest.mark.timeout(300)
def test_backfill_storm_of_simulated_devices() -> None:
    stack = Stack("gw-storm", extra_acl=OBSERVER_ACL, extra_conf=OBSERVER_CONF)
    try:
        password = add_observer(stack)
        stack.start()
        gw = stack.add_gateway("storm")
        gw.start()
        gw.wait_healthy(30)
        result = run_storm(stack, stack.workdir, password, devices=300, per_device=100, seed=11)
        print(result.line())
        assert result.produced == 300 * 100
        assert (result.doubles, result.missing, result.unexpected) == (0, 0, 0)
        assert result.mismatched == 0
        assert result.stored == result.acknowledged == result.produced
        # Each device: two batches of 50 and its status "online". Refused connects and
        # redeliveries depend on the machine's load: printed here, measured in the benches.
        batches = gw.metric("gateway_messages_received_total") - gw.metric("gateway_statuses_total")
        print(f"storm: {batches:.0f} batch messages received, {result.connect_failures} refused")
        assert batches >= 300 * 2, batches
        # Each reading received written once: InfluxDB's own count of points asked for equals
        # the gateway's count of readings written, which is at most what it received (a
        # redelivered reading in the same write as its first copy is written once).
        written = gw.metric("gateway_readings_written_total")
        assert points_requested(stack) == written <= gw.metric("gateway_readings_received_total")
        assert "Traceback" not in gw.log()
    finally:
        stack.close()
