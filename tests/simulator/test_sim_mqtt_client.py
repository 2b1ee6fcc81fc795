"""The virtual devices' compact MQTT 3.1.1 client: byte-exact packets, and a real broker."""

import asyncio
import itertools
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.mqtt_client import (
    Connection,
    MqttError,
    _packet,
    connect,
    connect_packet,
    publish_packet,
)


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
    """The service account writes a retained config; a device subscribes with a persistent
    session and gets it, flagged retained and byte for byte; a second connect finds the
    session, and a clean one starts without it."""
    dev, password = "mqtt-client-dev", "mqtt-client-dev-password"
    broker.server.passwords.update({dev: password})
    svc = broker.service
    topic = f"sb/down/{dev}/config"
    config = b'{"v":1,"dev":"mqtt-client-dev","server_ts":1764000000000,"interval":900}'

    async def run():
        s = await connect(broker.port, f"{svc.username}-mqtt-client-test", svc.username,
                          svc.password, clean=True)
        await s.publish(topic, config, retain=True)  # QoS 1: returns after the PUBACK
        await s.disconnect()
        c = await connect(broker.port, dev, dev, password)
        assert not c.session_present
        await c.subscribe([topic])
        got = await c.next_message(5.0)
        await c.disconnect()
        c2 = await connect(broker.port, dev, dev, password)
        assert c2.session_present
        await c2.disconnect()
        c3 = await connect(broker.port, dev, dev, password, clean=True)
        assert not c3.session_present
        await c3.disconnect()
        return got

    got = asyncio.run(run())
    assert got is not None, "the retained config did not arrive"
    assert (got.topic, got.payload, got.retain) == (topic, config, True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6), st.data())
def test_incoming_packets_parse_whatever_the_chunking(payloads, data):
    """PUBLISH packets (some with multi-byte remaining lengths) and a PUBACK, cut into
    arbitrary chunks: every message comes out whole and in order, each QoS 1 message owes its
    PUBACK, and the PUBACK completes the request waiting for it."""
    payloads = [*payloads, bytes(range(256)) * 70]  # 17,920 bytes: a 3-byte remaining length
    stream = b"".join(
        _packet(3, 0x02, b"\x00\x03a/b" + bytes([0, k + 1]) + pl) for k, pl in enumerate(payloads)
    ) + b"\x40\x02\x00\x63"  # PUBACK for packet id 99
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=8)))

    async def run():
        a, b = socket.socketpair()
        conn = Connection(a, asyncio.get_running_loop())
        waiting = conn.loop.create_future()
        conn._waiting[(4, 99)] = waiting
        for lo, hi in itertools.pairwise([0, *cuts, len(stream)]):
            conn.data_received(stream[lo:hi])
        got = [(m.topic, m.payload, m.qos, m.pid) for m in conn.messages]
        conn.abort()
        b.close()
        return got, conn._owed, waiting.done()

    got, owed, acked = asyncio.run(run())
    assert got == [("a/b", pl, 1, k + 1) for k, pl in enumerate(payloads)]
    assert owed == b"".join(bytes([0x40, 2, 0, k + 1]) for k in range(len(payloads)))
    assert acked
