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
    service = mqtt_probe(broker.service.username, broker.service.password)
    service.connect()
    service.subscribe(p.DEADLETTER_TOPIC_FILTER)  # would see a forged dead letter
    victim = mqtt_probe(b, devices[b], clean=False)
    victim.connect()
    attacker = mqtt_probe(a, devices[a])
    attacker.connect()
    for probe, dev in ((victim, b), (attacker, a)):
        for kind in ("ack", "config"):
            assert not probe.subscribe(p.topic_for(kind, dev))[0].is_failure

    forbidden = [
        f"sb/up/{b}/reading",  # B's readings
        f"sb/up/{b}/batch",
        f"sb/up/{b}/status",
        f"sb/down/{b}/ack",  # B's acknowledgements
        f"sb/down/{b}/config",
        f"sb/down/{a}/ack",  # A's own acknowledgements and config
        f"sb/down/{a}/config",
        f"sb/svc/deadletter/{a}",
        f"sb/svc/deadletter/{b}",
    ]
    for topic in forbidden:
        attacker.publish(topic, b"FORBIDDEN")
    # Sentinels over permitted paths, sent after the forbidden ones.
    attacker.publish(f"sb/up/{a}/reading", b"SENTINEL-UP")
    gateway.publish(f"sb/down/{a}/ack", b"SENTINEL-A")
    gateway.publish(f"sb/down/{b}/ack", b"SENTINEL-B")
    gateway.publish(f"sb/svc/deadletter/{a}", b"SENTINEL-DL")

    gateway.wait_for(lambda ms: any(m.payload == b"SENTINEL-UP" for m in ms))
    attacker.wait_for(lambda ms: any(m.payload == b"SENTINEL-A" for m in ms))
    victim.wait_for(lambda ms: any(m.payload == b"SENTINEL-B" for m in ms))
    service.wait_for(lambda ms: any(m.payload == b"SENTINEL-DL" for m in ms))
    for probe in (gateway, attacker, victim, service):
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
    assert gateway.subscribe("sb/#")[0].is_failure  # not even the gateway may ask for everything
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
    for topic in ("sb/down/+/config", "sb/#", f"sb/down/{b}/config", "#"):
        assert reader.subscribe(topic)[0].is_failure, topic
    reader.subscribe(p.topic_for("config", a))
    reader.subscribe(p.topic_for("ack", a))
    reader.wait_for(lambda ms: any(m.payload == b"CONFIG-A" for m in ms))
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    gateway.publish(f"sb/down/{a}/ack", b"SENTINEL")
    reader.wait_for(lambda ms: any(m.payload == b"SENTINEL" for m in ms))
    assert {m.payload for m in reader.received()} == {b"CONFIG-A", b"SENTINEL"}
    service.publish(f"sb/down/{a}/config", b"", retain=True)
    service.publish(f"sb/down/{b}/config", b"", retain=True)


# --- subscriptions and client ids (issue 11: mosquitto's acl_file checks neither) -------------


def test_a_device_cannot_join_the_gateways_shared_subscription(mqtt_probe, broker, devices):
    """A device in the gateways' group would get its share of every reading, and the broker,
    which may not deliver them to it, would drop them: readings acknowledged and gone."""
    a, b = sorted(devices)[:2]
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    assert not gateway.subscribe(p.shared_subscription())[0].is_failure
    thief = mqtt_probe(a, devices[a])
    thief.connect()
    assert thief.subscribe(p.shared_subscription())[0].is_failure
    publisher = mqtt_probe(b, devices[b])
    publisher.connect()
    sent = [f"R{i}".encode() for i in range(20)]
    for payload in sent:
        publisher.publish(p.topic_for("reading", b), payload)
    gateway.wait_for(lambda ms: {m.payload for m in ms} >= set(sent))
    assert thief.received() == []


@pytest.mark.parametrize(
    "topic",
    [
        "#",
        "sb/#",
        "sb/up/+/+",
        "sb/up/{b}/reading",
        "sb/up/{b}/status",
        "sb/svc/deadletter/+",
        "sb/svc/deadletter/{b}",
        "sb/down/+/ack",
        "sb/down/{b}/ack",
        "sb/down/{b}/config",
        "sb/down/{a}/#",
        "$share/x/sb/down/{a}/ack",
        "$share/gateways/#",
        "$SYS/#",
    ],
)
def test_a_device_may_subscribe_to_its_own_down_topics_only(mqtt_probe, devices, topic):
    a, b = sorted(devices)[:2]
    dev = mqtt_probe(a, devices[a], protocol=mqtt.MQTTv5)
    dev.connect()
    (code,) = dev.subscribe(topic.format(a=a, b=b))
    assert code.value == 0x87  # Not authorized
    for kind in ("ack", "config"):
        assert dev.subscribe(p.topic_for(kind, a))[0].value == 1  # granted QoS 1


def test_a_device_reads_nothing_of_another_device(mqtt_probe, broker, devices) -> None:
    """Readings, status and dead letters of device B, tried by device A with every filter that
    would match them; a sentinel on A's own ack topic shows A's subscriptions were live."""
    a, b = sorted(devices)[:2]
    reader = mqtt_probe(a, devices[a])
    reader.connect()
    for topic in ("#", "sb/up/+/+", f"sb/up/{b}/reading", f"sb/up/{b}/status",
                  "sb/svc/deadletter/+", f"sb/svc/deadletter/{b}", p.topic_for("ack", a)):
        reader.subscribe(topic)
    other = mqtt_probe(b, devices[b])
    other.connect()
    other.publish(p.topic_for("reading", b), b"B-READING")
    other.publish(p.topic_for("status", b), b"B-STATUS")
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    gateway.publish(f"sb/svc/deadletter/{b}", b"B-DEADLETTER")
    gateway.publish(p.topic_for("ack", a), b"SENTINEL")
    reader.wait_for(lambda ms: any(m.payload == b"SENTINEL" for m in ms))
    assert [m.payload for m in reader.received()] == [b"SENTINEL"]


def test_only_gateway_accounts_publish_acknowledgements(mqtt_probe, broker, devices) -> None:
    """A forged ack makes a device delete readings that were never stored."""
    a, b = sorted(devices)[:2]
    victim = mqtt_probe(b, devices[b])
    victim.connect()
    victim.subscribe(p.topic_for("ack", b))
    for user, password in ((broker.service.username, broker.service.password), (a, devices[a])):
        forger = mqtt_probe(user, password)
        forger.connect()
        forger.publish(p.topic_for("ack", b), b"FORGED")
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    gateway.publish(p.topic_for("ack", b), b"SENTINEL")
    victim.wait_for(lambda ms: any(m.payload == b"SENTINEL" for m in ms))
    assert [m.payload for m in victim.received()] == [b"SENTINEL"]


def test_a_device_cannot_take_the_gateways_client_id(mqtt_probe, broker, devices) -> None:
    a = sorted(devices)[0]
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    gateway.subscribe(p.GATEWAY_TOPIC_FILTER)
    for _ in range(3):
        intruder = mqtt_probe(a, devices[a], client_id=gateway.client_id)
        assert intruder.connect().is_failure
        intruder.client.loop_stop()
    dev = mqtt_probe(a, devices[a])
    dev.connect()
    dev.publish(p.topic_for("reading", a), b"SENTINEL")
    gateway.wait_for(lambda ms: any(m.payload == b"SENTINEL" for m in ms))
    assert gateway.disconnects == 0 and gateway.client.is_connected()


def test_a_device_cannot_take_another_devices_session(mqtt_probe, broker, devices) -> None:
    """B's persistent session holds an acknowledgement while B sleeps; A connecting as B
    (clean session) would discard it."""
    a, b = sorted(devices)[:2]
    victim = mqtt_probe(b, devices[b], clean=False)
    victim.connect()
    victim.subscribe(p.topic_for("ack", b))
    victim.close()
    gateway = mqtt_probe(broker.gateway.username, broker.gateway.password)
    gateway.connect()
    gateway.publish(p.topic_for("ack", b), b"QUEUED")
    intruder = mqtt_probe(a, devices[a], client_id=b)
    assert intruder.connect().is_failure
    intruder.client.loop_stop()
    back = mqtt_probe(b, devices[b], clean=False)
    back.connect()
    back.wait_for(lambda ms: any(m.payload == b"QUEUED" for m in ms))


def test_service_accounts_use_their_own_client_ids_only(mqtt_probe, broker, devices) -> None:
    a = sorted(devices)[0]
    gw, svc = broker.gateway, broker.service
    assert mqtt_probe(svc.username, svc.password, client_id=a).connect().is_failure
    assert mqtt_probe(svc.username, svc.password, client_id=gw.username).connect().is_failure
    assert mqtt_probe(gw.username, gw.password, client_id=f"{svc.username}-x").connect().is_failure
    own = mqtt_probe(gw.username, gw.password, client_id=f"{gw.username}-7")
    assert own.connect().getName() == "Success"


@pytest.mark.parametrize(
    ("account", "topic", "granted"),
    [
        ("gateway", "$share/gateways/sb/up/+/+", True),
        ("gateway", "$share/g-test-7/sb/up/+/+", True),  # any group name
        ("gateway", "sb/up/+/+", True),
        ("gateway", "sb/up/dev-1/reading", True),  # narrower than sb/up/+/+
        ("gateway", "$share/gateways/#", False),
        ("gateway", "sb/#", False),
        ("gateway", "sb/down/+/ack", False),
        ("service", "sb/svc/alerts/0101", True),
        ("service", "sb/up/+/status", True),
        ("service", "sb/up/+/reading", False),
        ("service", "sb/svc/#", False),
        ("service", "$share/gateways/sb/up/+/+", False),
    ],
)
def test_service_accounts_get_only_their_listed_subscriptions(
    mqtt_probe, broker, account: str, topic: str, granted: bool
) -> None:
    cred = broker.gateway if account == "gateway" else broker.service
    probe = mqtt_probe(cred.username, cred.password, protocol=mqtt.MQTTv5)
    probe.connect()
    (code,) = probe.subscribe(topic)
    assert (code.value == 1) is granted and (code.value == 0x87) is not granted
