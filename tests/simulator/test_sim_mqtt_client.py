"""The virtual devices' compact MQTT 3.1.1 client: byte-exact packets, and a real broker."""

import asyncio

import pytest

from simulator.mqtt_client import MqttError, _packet, connect, connect_packet, publish_packet


def test_connect_packet_bytes():
    pkt = connect_packet("d1", "d1", "pw", ("sb/up/d1/status", b"x"), clean=False, keepalive=60)
    assert pkt == (
        b"\x10\x2a"  # CONNECT, remaining length 42
        b"\x00\x04MQTT\x04"  # protocol name and level 4 (3.1.1)
        b"\xec"  # user, password, will retain, will QoS 1, will flag; clean session 0
        b"\x00\x3c"  # keep-alive 60 s
        b"\x00\x02d1" b"\x00\x0fsb/up/d1/status" b"\x00\x01x" b"\x00\x02d1" b"\x00\x02pw"
    )


def test_publish_packet_and_long_remaining_length():
    assert publish_packet("a/b", b"hi", 7) == b"\x32\x09\x00\x03a/b\x00\x07hi"
    assert publish_packet("t", b"", 1, retain=True)[0] == 0x33
    assert _packet(3, 2, b"x" * 200)[:3] == b"\x32\xc8\x01"  # 200 = 0x48 + 1*128


def test_refused_and_unreachable_broker_raise_mqtt_error(broker):
    async def bad_password():
        await connect(broker.port, "nobody-here", "nobody-here", "wrong", timeout=5)

    with pytest.raises(MqttError, match=r"bad user name or password|not authorised"):
        asyncio.run(bad_password())

    async def nothing_listening():
        from smartbins.servers import free_port

        await connect(free_port(), "x", timeout=2)

    with pytest.raises(MqttError, match="cannot reach the broker"):
        asyncio.run(nothing_listening())


def test_round_trip_through_the_broker_with_session(broker):
    """Service account writes a retained config; a device-like client of the gateway account
    subscribes with a persistent session and gets it; a second connect finds the session."""
    gw = broker.gateway

    async def run():
        c = await connect(broker.port, "mqtt-client-test", gw.username, gw.password)
        assert not c.session_present
        await c.subscribe(["sb/up/mqtt-client-dev/reading"])
        await c.disconnect()
        c2 = await connect(broker.port, "mqtt-client-test", gw.username, gw.password)
        assert c2.session_present
        await c2.disconnect()
        c3 = await connect(broker.port, "mqtt-client-test", gw.username, gw.password,
                           clean=True)
        await c3.disconnect()

    asyncio.run(run())
