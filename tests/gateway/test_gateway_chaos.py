"""Chaos: 200 devices publish while broker, gateway and influxd are each SIGKILLed twice at
seeded random moments; afterwards every reading is in InfluxDB exactly once.

The devices are the stand-in in gw_fleet.py (the simulator's virtual devices, branch
``simulator``, are to replace it). ``bench/gateway_chaos.py`` runs the same at 2,000 devices.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gw_chaos import run_chaos
from gw_stack import Stack


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_chaos_every_reading_lands_exactly_once(registry_path: Path) -> None:
    stack = Stack("gw-chaos")
    try:
        stack.start()
        result = run_chaos(stack, registry_path, devices=200, seed=20261124, duration_s=45)
        print(result.line())
        assert result.kills == {"broker": 2, "gateway": 2, "influxd": 2}
        assert result.produced > 200 * 10
        assert (result.doubles, result.missing, result.unexpected) == (0, 0, 0)
        assert result.stored == result.expected == result.produced - result.dropped
        log = stack.gateways[0].log()
        assert "Traceback" not in log, log[-3000:]
    finally:
        stack.close()
