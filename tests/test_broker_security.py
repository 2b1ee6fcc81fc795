"""Accounts and topic rules on a real Mosquitto started from the production config."""

from __future__ import annotations

import itertools

import paho.mqtt.client as mqtt
import pytest

from smartbins import protocol as p
from smartbins.provisioning import ProvisionRequest, provision
from smartbins.registry import Registry
from smartbins.testing import Broker

_ids = itertools.count()


@pytest.fixture
def devices(broker: Broker, registry_path) -> dict[str, str]:
    """Three freshly provisioned devices: id -> password."""
    n = next(_ids)
    with Registry(registry_path) as reg:
        reg.add_municipality("kk", "København")
        reg.add_site("s", "kk", 55.7, 12.6)
        ids = [f"sec{n}-{c}" for c in "abc"]
        for i in ids:
            reg.add_bin(f"bin-{i}", "s", "residual", 240)
        creds = provision(
            reg, broker.server.passwords, [ProvisionRequest(i, f"bin-{i}") for i in ids]
        )
    return {c.username: c.password for c in creds}


def test_anonymous_client_is_refused(mqtt_probe) -> None:
    rc = mqtt_probe(None, None).connect()
    assert rc.is_failure and rc.getName() == "Not authorized"


def test_wrong_password_is_refused(mqtt_probe, devices) -> None:
    dev = next(iter(devices))
    assert mqtt_probe(dev, "not-the-password").connect().is_failure
    assert mqtt_probe(dev, devices[dev]).connect().getName() == "Success"


def test_service_account_password_is_not_a_device_password(mqtt_probe, broker, devices) -> None:
    dev = next(iter(devices))
    assert mqtt_probe(dev, broker.gateway.password).connect().is_failure


def test_device_cannot_write_another_devices_or_its_own_down_topics(
    mqtt_probe, broker, devices
) -> None:
    a, b = sorted(devices)[:2]
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    gateway.subscribe(p.shared_subscription())
    victim = mqtt_probe(b, devices[b], clean=False)
    victim.connect()
    victim.subscribe(f"sb/down/{b}/#")
    attacker = mqtt_probe(a, devices[a])
    attacker.connect()
    attacker.subscribe(f"sb/down/{a}/#")

    forbidden = [
        f"sb/up/{b}/reading",  # B's readings
        f"sb/up/{b}/batch",
        f"sb/up/{b}/status",
        f"sb/down/{b}/ack",  # B's acknowledgements
        f"sb/down/{b}/config",
        f"sb/down/{a}/ack",  # A's own acknowledgements and config
        f"sb/down/{a}/config",
        "sb/svc/deadletter/x",
    ]
    for topic in forbidden:
        attacker.publish(topic, b"FORBIDDEN")
    # Sentinels over permitted paths, sent after the forbidden ones.
    attacker.publish(f"sb/up/{a}/reading", b"SENTINEL-UP")
    gateway.publish(f"sb/down/{a}/ack", b"SENTINEL-A")
    gateway.publish(f"sb/down/{b}/ack", b"SENTINEL-B")

    gateway.wait_for(lambda ms: any(m.payload == b"SENTINEL-UP" for m in ms))
    attacker.wait_for(lambda ms: any(m.payload == b"SENTINEL-A" for m in ms))
    victim.wait_for(lambda ms: any(m.payload == b"SENTINEL-B" for m in ms))
    for probe in (gateway, attacker, victim):
        assert [m.topic for m in probe.received() if m.payload == b"FORBIDDEN"] == []


def test_refused_publish_carries_not_authorized_under_mqtt5(mqtt_probe, devices) -> None:
    a, b = sorted(devices)[:2]
    codes: dict[int, int] = {}
    attacker = mqtt_probe(a, devices[a], protocol=mqtt.MQTTv5)
    attacker.client.on_publish = lambda c, u, mid, rc, props: codes.__setitem__(mid, rc.value)
    attacker.connect()
    denied = attacker.publish(f"sb/up/{b}/reading", b"x")
    allowed = attacker.publish(f"sb/up/{a}/reading", b"x")
    attacker.wait_for(lambda _: denied.mid in codes and allowed.mid in codes)
    assert codes[denied.mid] == 0x87  # Not authorized
    assert codes[allowed.mid] in (0x00, 0x10)  # success / no matching subscribers


def test_gateway_receives_all_readings_and_no_acknowledgements_or_config(
    mqtt_probe, broker, devices
) -> None:
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    gateway.subscribe(p.shared_subscription())
    gateway.subscribe("sb/#")  # even asking for everything must not reveal the down topics
    service = mqtt_probe(broker.service.username, broker.service.password)
    service.connect()
    for dev, pw in devices.items():
        d = mqtt_probe(dev, pw)
        d.connect()
        d.publish(f"sb/up/{dev}/reading", dev.encode())
        d.publish(f"sb/up/{dev}/batch", dev.encode())
        service.publish(f"sb/down/{dev}/config", b"CONFIG")
        gateway.publish(f"sb/down/{dev}/ack", b"ACK")
    last = sorted(devices)[-1]
    sentinel = mqtt_probe(last, devices[last])
    sentinel.connect()
    sentinel.publish(f"sb/up/{last}/status", b"SENTINEL")
    gateway.wait_for(lambda ms: any(m.payload == b"SENTINEL" for m in ms))
    got = gateway.received()
    assert {m.topic for m in got if m.payload in (b"CONFIG", b"ACK")} == set()
    for dev in devices:
        assert {m.topic for m in got if m.payload == dev.encode()} == {
            f"sb/up/{dev}/reading",
            f"sb/up/{dev}/batch",
        }
    for dev in devices:  # clear the retained-looking traffic for later tests
        service.publish(f"sb/down/{dev}/config", b"", retain=True)


def test_device_reads_only_its_own_config_and_acknowledgements(mqtt_probe, broker, devices) -> None:
    a, b = sorted(devices)[:2]
    service = mqtt_probe(broker.service.username, broker.service.password)
    service.connect()
    service.publish(f"sb/down/{a}/config", b"CONFIG-A", retain=True)
    service.publish(f"sb/down/{b}/config", b"CONFIG-B", retain=True)
    reader = mqtt_probe(a, devices[a])
    reader.connect()
    reader.subscribe("sb/down/+/config")
    reader.subscribe("sb/#")
    reader.wait_for(lambda ms: any(m.payload == b"CONFIG-A" for m in ms))
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    gateway.publish(f"sb/down/{a}/ack", b"SENTINEL")
    reader.wait_for(lambda ms: any(m.payload == b"SENTINEL" for m in ms))
    assert {m.payload for m in reader.received()} == {b"CONFIG-A", b"SENTINEL"}
    service.publish(f"sb/down/{a}/config", b"", retain=True)
    service.publish(f"sb/down/{b}/config", b"", retain=True)
