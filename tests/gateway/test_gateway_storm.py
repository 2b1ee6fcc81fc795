"""A backfill storm from the simulator's virtual devices: 300 devices, each holding 100
buffered readings after an outage, reconnect at once and send them as batches; every reading
is stored exactly once and acknowledged end to end. ``bench/gateway_throughput.py`` (c) and
``bench/gateway_storm_sim.py`` run storms at 10,000 devices."""

from __future__ import annotations

import pytest
from gw_stack import Stack
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
        assert result.stored == result.acknowledged == result.produced
        assert result.connect_failures == 0
        # each device: two batches of 50 and its status "online"; a few redeliveries at most
        batches = gw.metric("gateway_messages_received_total") - gw.metric("gateway_statuses_total")
        assert 300 * 2 <= batches <= 300 * 2 + 50, batches
        assert "Traceback" not in gw.log()
    finally:
        stack.close()
