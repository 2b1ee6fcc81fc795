"""The gateway's broker connection: paho-mqtt 2.x, MQTT 5, manual acknowledgements.

* ``manual_ack=True``: paho does not PUBACK on receipt; the gateway calls :meth:`ack` only
  after InfluxDB stored what the message carried. Until then the broker counts the message as
  in flight and redelivers it (DUP) if the connection drops.
* **Receive Maximum** (MQTT 5 CONNECT property) = ``receive_maximum``: the broker sends at most
  that many unacknowledged QoS 1 messages. That *is* the bounded queue and the backpressure:
  when InfluxDB is slow, acknowledgements stop, and the broker stops sending and queues for the
  session instead (mosquitto's ``max_queued_messages``, raised to 200,000 in mosquitto.conf).
  Mosquitto 2.0 takes the smaller of this and its own ``max_inflight_messages`` (10,000).
* **Persistent session with expiry**: ``clean_start=False`` and ``SessionExpiryInterval``, so
  a restarted gateway gets back what it had not acknowledged, and one that stays away stops
  receiving its share of ``$share/<group>/sb/up/+/+`` once the broker drops its session.
* The gateway subscribes at every connect. When the CONNACK says ``session_present = 0``
  (first start, or a broker that lost its sessions in a crash) that is required; when it says
  1 it is still done, because a Mosquitto 2.0.11 restored from its autosave file reported a
  session whose shared subscription was gone. Devices resend what a lost session held.
* Acknowledgements are tied to the connection a message came on (a generation number): after a
  reconnect the broker redelivers what was in flight, so an acknowledgement for a message of a
  previous connection is skipped (its redelivered copy will be acknowledged instead).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.config import MqttConfig
from gateway.metrics import Metrics
from smartbins import protocol as p

log = logging.getLogger("smartbins.gateway.mqtt")

#: Our own publishes (acknowledgements, dead letters) awaiting their PUBACK, at most.
OUTGOING_LIMIT = 5000


class _BufferedClient(mqtt.Client):
    """paho reads every packet in three ``recv`` calls (the command byte, the length, the
    body): three system calls per message, each a chance for the network thread to lose the
    GIL to the decoder and writer threads and wait for it. This client reads up to 64 KiB per
    system call and serves paho's small reads from that buffer; ``loop_read`` keeps reading
    while the buffer holds bytes, since ``select`` cannot see them. Measured in
    bench/gateway_throughput.py (b): the network thread's CPU per message fell by about a
    tenth, its system time by two thirds.

    ``_sock_recv`` is paho's one place that reads the socket (paho 2.1-2.2); if a paho release
    renames it, this class falls back to paho's own reads (the tests would still pass, slower).
    """

    _RECV = 65536

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing of the old one is kept
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(self._RECV)  # raises BlockingIOError when there is none
            if not data:
                return data  # the peer closed the connection
            self._rbuf, self._rpos = data, 0
        out = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(out)
        return out

    def _buffered(self) -> bool:
        return self._rsock is self._sock and self._rpos < len(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and (
            self._buffered()
        ):
            rc = super().loop_read(max_packets)
        return rc


@dataclass(frozen=True)
class Delivery:
    """Which broker delivery a message was: what :meth:`MqttLink.ack` needs."""

    generation: int
    mid: int
    qos: int
    #: Sent because of a retained message (at subscribe time), not published just now.
    retain: bool = False


class MqttLink:
    def __init__(
        self,
        cfg: MqttConfig,
        password: str,
        on_message: Callable[[str, bytes, Delivery], None],
        metrics: Metrics,
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self._deliver = on_message
        self._lock = threading.Lock()
        self.generation = 0
        self.connected = False
        self._stopping = False
        self.subscribed = threading.Event()
        self.topic_filter = p.shared_subscription(cfg.group)
        client_class = _BufferedClient if hasattr(mqtt.Client, "_sock_recv") else mqtt.Client
        c = client_class(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        c.username_pw_set(cfg.username, password)
        c.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        # Outgoing QoS 1 (acknowledgements, dead letters): paho's own in-flight window scans all
        # its outgoing messages at every PUBACK (O(n)), which starved the network thread in a
        # storm; so paho's window is off (0) and publish() keeps its own bound instead, below
        # the Receive Maximum the broker announces (10,000 for mosquitto.conf).
        c.max_inflight_messages_set(0)
        c.max_queued_messages_set(0)
        self._outstanding = 0
        self._out_cond = threading.Condition()
        self.publisher_waiting = False
        c.on_publish = self._on_publish
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after any loss."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        self.client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly; the session (and what is unacknowledged in it) stays at the
        broker until its expiry."""
        self._stopping = True
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    # ----------------------------------------------------------------- callbacks (paho thread)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        if rc.is_failure:
            log.error(
                "broker %s:%d refused the connection: %s (check mqtt.username and the password "
                "in mqtt.password_env / mqtt.password_file)",
                self.cfg.host,
                self.cfg.port,
                rc,
            )
            return
        with self._lock:
            self.generation += 1
            self.connected = True
        self.metrics.inc("gateway_mqtt_connects_total")
        self.metrics.set("gateway_mqtt_connected", 1)
        # Subscribe at every connect, not only when session_present is false: a Mosquitto
        # 2.0.11 restarted from its autosave file answered "session present" for a session
        # that had lost its $share subscription, and the gateway received nothing (found by
        # bench/gateway_chaos.py). Subscribing again to the same filter is harmless.
        log.info(
            "connected to %s:%d (%s); subscribing to %s",
            self.cfg.host,
            self.cfg.port,
            "session present" if flags.session_present else "new session",
            self.topic_filter,
        )
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        rcs: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        if any(rc.is_failure for rc in rcs):
            log.error(
                "the broker refused the subscription to %s (%s): is %s a gateway account in "
                "mosquitto.acl?",
                self.topic_filter,
                ", ".join(str(rc) for rc in rcs),
                self.cfg.username,
            )
            return
        self.metrics.inc("gateway_mqtt_subscribes_total")
        self.subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        with self._lock:
            was = self.connected
            self.connected = False
            self.generation += 1
        self.subscribed.clear()
        with self._out_cond:  # paho resends what was in flight after the reconnect
            self._outstanding = 0
            self._out_cond.notify_all()
        self.metrics.set("gateway_mqtt_connected", 0)
        if was and not self._stopping:
            log.warning("disconnected from the broker (%s); reconnecting", rc)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            generation = self.generation
        if msg.dup:
            self.metrics.inc("gateway_messages_redelivered_total")
        self._deliver(
            msg.topic, msg.payload, Delivery(generation, msg.mid, msg.qos, bool(msg.retain))
        )

    # ----------------------------------------------------------------- from the writer thread

    def ack(self, delivery: Delivery) -> bool:
        """PUBACK a stored message, if it came on the current connection."""
        return delivery.qos == 0 or self.ack_many([delivery]) == 1

    def ack_many(self, deliveries: list[Delivery]) -> int:
        """PUBACK stored messages that came on the current connection (one lock, one metrics
        update for a whole batch); returns how many were acknowledged."""
        done = skipped = 0
        with self._lock:
            current = self.generation if self.connected else None
            for d in deliveries:
                if d.qos == 0:
                    continue
                if d.generation == current:
                    self.client.ack(d.mid, d.qos)
                    done += 1
                else:
                    skipped += 1
        if done:
            self.metrics.inc("gateway_broker_acks_total", done)
        if skipped:
            self.metrics.inc("gateway_broker_acks_skipped_total", skipped)
        return done

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1, not retained. Queued by paho while disconnected; a lost one is harmless (the
        device resends, the gateway stores again and acknowledges again). Waits (the writer
        thread, never the network thread) while OUTGOING_LIMIT publishes await their PUBACK."""
        with self._out_cond:
            while self._outstanding >= OUTGOING_LIMIT and self.connected:
                # Tells the gateway not to hold the network thread (which must read the
                # PUBACKs this waits for) even when its queue is full: no deadlock.
                self.publisher_waiting = True
                self._out_cond.wait(0.5)
            self.publisher_waiting = False
            self._outstanding += 1
        self.client.publish(topic, payload, qos=1)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        with self._out_cond:
            self._outstanding = max(0, self._outstanding - 1)
            self._out_cond.notify_all()
