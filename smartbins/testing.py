"""pytest fixtures for real servers, shared by every part's tests (``pytest_plugins``).

Session-scoped Mosquitto and InfluxDB on free loopback ports, data in temp dirs, stopped at the
end; a small MQTT probe for asserting what a real broker delivers.
"""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from smartbins.provisioning import (
    GATEWAY_ACCOUNT,
    SERVICE_ACCOUNT,
    Credentials,
    ensure_service_accounts,
)
from smartbins.servers import InfluxDB, Mosquitto, temp_workdir, wait_until

_client_ids = itertools.count()


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class MqttProbe:
    """A paho client that records what it receives; for tests, not for production paths."""

    port: int
    username: str | None
    password: str | None = field(repr=False)
    protocol: int = mqtt.MQTTv311
    client_id: str = ""
    clean: bool = True
    messages: list[Received] = field(default_factory=list)
    connect_rc: ReasonCode | None = None
    #: Connections the broker closed or refused (a session taken over shows up here).
    disconnects: int = 0

    def __post_init__(self) -> None:
        if not self.client_id:  # the broker takes only an account's own ids (mosquitto.conf)
            n = next(_client_ids)
            if self.username is None:
                self.client_id = f"probe-{n}"
            elif "." in self.username:
                self.client_id = f"{self.username}-probe-{n}"
            else:
                self.client_id = self.username
        kwargs = {"clean_session": self.clean} if self.protocol != mqtt.MQTTv5 else {}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self.protocol,
            **kwargs,
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: object
    ) -> None:
        self.connect_rc = rc
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, *args: object) -> None:
        self.disconnects += 1

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, msg.payload, msg.qos, msg.retain))

    def connect(self, timeout: float = 5.0) -> ReasonCode:
        """Connect once (no automatic retries) and return the broker's answer."""
        self.client.reconnect_delay_set(60, 120)
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            raise TimeoutError("no CONNACK")
        assert self.connect_rc is not None
        return self.connect_rc

    def subscribe(self, topic: str, qos: int = 1) -> list[ReasonCode]:
        """Subscribe and return the broker's answer (granted QoS, or a failure code)."""
        done = threading.Event()
        granted: list[object] = []

        def on_subscribe(
            client: mqtt.Client, userdata: object, mid: int, rcs: list[ReasonCode], props: object
        ) -> None:
            granted.extend(rcs)
            done.set()

        self.client.on_subscribe = on_subscribe
        self.client.subscribe(topic, qos)
        if not done.wait(5):
            raise TimeoutError(f"no SUBACK for {topic}")
        return granted  # type: ignore[return-value]

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)
        return info

    def received(self, topic: str | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if topic is None or m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0) -> None:
        wait_until(lambda: predicate(self.received()), timeout, message="expected messages")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Broker:
    """A running test broker with its service accounts' credentials."""

    server: Mosquitto
    gateway: Credentials
    service: Credentials

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    workdir = temp_workdir("mosquitto")
    server = Mosquitto(workdir)
    creds = ensure_service_accounts(server.passwords, workdir / "secrets")
    try:
        server.start()
        yield Broker(server, creds[GATEWAY_ACCOUNT], creds[SERVICE_ACCOUNT])
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def influxdb() -> Iterator[InfluxDB]:
    workdir = temp_workdir("influxdb")
    server = InfluxDB(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def mqtt_probe(broker: Broker) -> Iterator[Callable[..., MqttProbe]]:
    """Factory: ``mqtt_probe(username, password, **kw)`` connected probes, closed afterwards."""
    made: list[MqttProbe] = []

    def make(username: str | None, password: str | None, **kwargs: object) -> MqttProbe:
        probe = MqttProbe(broker.port, username, password, **kwargs)  # type: ignore[arg-type]
        made.append(probe)
        return probe

    yield make
    for p in made:
        p.close()


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    return tmp_path / "registry.sqlite"
