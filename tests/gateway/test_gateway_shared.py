"""Two gateways on one shared subscription split the load; killing one for good loses nothing.

Mosquitto keeps assigning a share to a disconnected persistent member until its MQTT 5 session
expires; what it held then dies with the session and the devices resend it (no end-to-end
acknowledgement came), so the surviving gateway stores it.
"""

from __future__ import annotations

import time
from pathlib import Path

from gw_fleet import Fleet, provision_fleet
from gw_stack import Stack, assert_exactly_once, drive

from smartbins.servers import wait_until

EXPIRY_S = 3


def test_two_gateways_share_and_one_dies_for_good(registry_path: Path) -> None:
    stack = Stack("gw-shared")
    try:
        stack.start()
        a = stack.add_gateway("a", mqtt={"session_expiry_s": EXPIRY_S})
        b = stack.add_gateway("b", mqtt={"session_expiry_s": EXPIRY_S})
        a.start()
        b.start()
        a.wait_healthy()
        b.wait_healthy()
        creds = provision_fleet(str(registry_path), stack.broker.passwords, "sh", 20)
        fleet = Fleet(creds, stack.broker.port, seed=5, resend_timeout_s=2.0)
        try:
            fleet.start()
            wait_until(fleet.connected, 15, message="devices connected")
            for _ in range(10):
                fleet.produce(1)
                fleet.pump()  # 10 rounds of single `reading` messages: 200 messages
                time.sleep(0.05)
            drive(fleet, lambda: fleet.pending() == 0, 30)
            wa = a.metric("gateway_messages_received_total")
            wb = b.metric("gateway_messages_received_total")
            print(f"shared: gateway a took {wa:.0f} messages, b {wb:.0f}")
            assert wa >= 40 and wb >= 40, "the broker did not split the load"

            a.kill()  # for good
            killed = time.monotonic()
            before_b = b.metric("gateway_readings_written_total")
            for _ in range(5):
                fleet.produce(1)
                fleet.pump()
                time.sleep(0.2)
            drive(fleet, lambda: fleet.pending() == 0, EXPIRY_S + 30)
            took = time.monotonic() - killed
            print(f"shared: all acknowledged {took:.1f} s after killing a (expiry {EXPIRY_S} s)")
            assert b.metric("gateway_readings_written_total") >= before_b + 100
            counts = assert_exactly_once(stack, fleet)
            assert counts["readings"] == 20 * 15
            # After the expiry every new message goes to b at once: no resend needed (resends
            # are switched off, so only b's acknowledgement can empty the buffers).
            for d in fleet.devices:
                d.resend_timeout_s = 1e9
            sends = sum(d.sends for d in fleet.devices)
            fleet.produce(1)
            fleet.pump()
            wait_until(lambda: fleet.pending() == 0, 30, message="acknowledged without a resend")
            assert sum(d.sends for d in fleet.devices) == sends + 20
        finally:
            fleet.close()
    finally:
        stack.close()
