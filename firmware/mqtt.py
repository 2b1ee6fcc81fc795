# smartbins firmware: a minimal MQTT 3.1.1 client for one short session per wake
# Apache-2.0; part of smartbins. Every wait has a deadline on the injected clock; no retries here.

import select
import socket
import struct

from log import log_info
from micropython import const

CONNECT = const(0x10)
CONNACK = const(0x20)
PUBLISH = const(0x30)
PUBACK = const(0x40)
SUBSCRIBE = const(0x82)
SUBACK = const(0x90)
PINGREQ = const(0xC0)
PINGRESP = const(0xD0)
DISCONNECT = const(0xE0)
_POLL_MS = const(50)


class MQTTError(Exception):
    """The broker refused (``code`` = CONNACK return code: 4 bad credentials, 5 not authorised),
    or did not answer within its budget (``code`` = -1), or the stream was malformed (-2)."""

    def __init__(self, msg: str, code: int) -> None:
        super().__init__(msg)
        self.code = code


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _str(s) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def connect_packet(client_id, user, password, keepalive, clean, will) -> bytes:
    flags = 0x02 if clean else 0
    payload = _str(client_id)
    if will:
        wtopic, wmsg = will
        flags |= 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain
        payload += _str(wtopic) + _str(wmsg)
    if user is not None:
        flags |= 0x80
        payload += _str(user)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    return packet(CONNECT, _str("MQTT") + struct.pack("!BBH", 4, flags, keepalive) + payload)


class MQTTClient:
    """One connection. ``on_message(topic, payload)`` is called for every PUBLISH received
    (QoS 1 ones are acknowledged after it returns). ``clock`` gives ``ticks_ms()``,
    ``ticks_diff(a, b)`` and ``wait_readable(poller, ms)`` (the hardware layer)."""

    def __init__(self, clock, client_id, host, port, user=None, password=None, keepalive=60):
        self.clock = clock
        self.client_id = client_id
        self.addr = (host, port)
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.sock = None
        self.poller = None
        self.buf = b""
        self.pid = 0
        self.on_message = None
        self.acked = set()  # packet ids whose PUBACK/SUBACK arrived
        self.pong = False

    # ---------------------------------------------------------------- plumbing

    def _deadline(self, ms: int) -> int:
        return self.clock.ticks_ms() + ms

    def _left(self, deadline: int) -> int:
        return self.clock.ticks_diff(deadline, self.clock.ticks_ms())

    def _sock(self):
        sock = self.sock
        if sock is None:
            raise OSError("not connected")
        return sock

    def _send(self, data: bytes) -> None:
        self._sock().write(data)

    def _next_pid(self) -> int:
        self.pid = self.pid % 65535 + 1
        return self.pid

    def _read_packet(self, deadline: int):
        """The next (first byte, body), or None when the deadline passed."""
        while True:
            got = self._parse()
            if got is not None:
                return got
            left = self._left(deadline)
            if left <= 0:
                return None
            if self.clock.wait_readable(self.poller, min(left, _POLL_MS)):
                chunk = self._sock().recv(4096)
                if not chunk:
                    raise OSError("connection closed by broker")
                self.buf += chunk

    def _parse(self):
        buf = self.buf
        if len(buf) < 2:
            return None
        n = 0
        shift = 0
        i = 1
        while True:
            if i >= len(buf):
                return None
            b = buf[i]
            n |= (b & 0x7F) << shift
            i += 1
            if not b & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MQTTError("malformed remaining length", -2)
        if len(buf) < i + n:
            return None
        self.buf = buf[i + n :]
        return buf[0], buf[i : i + n]

    def _dispatch(self, first: int, body: bytes) -> None:
        kind = first & 0xF0
        if kind == PUBLISH:
            qos = (first >> 1) & 3
            (tlen,) = struct.unpack("!H", body[:2])
            topic = body[2 : 2 + tlen].decode()
            pos = 2 + tlen
            pid = 0
            if qos:
                (pid,) = struct.unpack("!H", body[pos : pos + 2])
                pos += 2
            if self.on_message:
                self.on_message(topic, body[pos:])
            if qos == 1:
                self._send(packet(PUBACK, struct.pack("!H", pid)))
        elif kind in (PUBACK, SUBACK):
            (pid,) = struct.unpack("!H", body[:2])
            self.acked.add(pid)
        elif kind == PINGRESP:
            self.pong = True
        else:
            log_info("mqtt: ignored packet type", hex(first))

    def _wait(self, done, deadline: int) -> bool:
        """Process incoming packets until ``done()`` or the deadline; True if done."""
        while not done():
            got = self._read_packet(deadline)
            if got is None:
                return False
            self._dispatch(got[0], got[1])
        return True

    # ---------------------------------------------------------------- API

    def connect(self, clean: bool, timeout_ms: int, will=None) -> bool:
        """TCP connect and CONNECT within ``timeout_ms``; returns CONNACK's session present."""
        deadline = self._deadline(timeout_ms)
        addr = socket.getaddrinfo(self.addr[0], self.addr[1])[0][-1]
        self.sock = socket.socket()
        self.sock.settimeout(max(timeout_ms, 1) / 1000)
        self.sock.connect(addr)
        self.poller = select.poll()
        self.poller.register(self.sock, select.POLLIN)
        self._send(
            connect_packet(self.client_id, self.user, self.password, self.keepalive, clean, will)
        )
        got = self._read_packet(deadline)
        if got is None:
            raise MQTTError("no CONNACK within %d ms" % timeout_ms, -1)
        first, body = got
        if first != CONNACK or len(body) != 2:
            raise MQTTError("expected CONNACK", -2)
        if body[1]:
            raise MQTTError("connection refused, code %d" % body[1], body[1])
        return bool(body[0] & 1)

    def publish(self, topic: str, payload: bytes, timeout_ms: int, retain=False) -> bool:
        """QoS 1 PUBLISH; True once its PUBACK arrived within ``timeout_ms``."""
        pid = self._next_pid()
        body = _str(topic) + struct.pack("!H", pid) + payload
        self._send(packet(PUBLISH | 0x02 | (1 if retain else 0), body))
        return self._wait(lambda: pid in self.acked, self._deadline(timeout_ms))

    def subscribe(self, topics, timeout_ms: int) -> bool:
        """SUBSCRIBE at QoS 1 to every topic; True once the SUBACK arrived."""
        pid = self._next_pid()
        body = struct.pack("!H", pid)
        for t in topics:
            body += _str(t) + b"\x01"
        self._send(packet(SUBSCRIBE, body))
        return self._wait(lambda: pid in self.acked, self._deadline(timeout_ms))

    def sync(self, timeout_ms: int) -> bool:
        """PINGREQ and wait for PINGRESP: the broker answers in order, so everything it had
        queued for this session (and retained messages after a SUBSCRIBE) has arrived."""
        self.pong = False
        self._send(packet(PINGREQ, b""))
        return self._wait(lambda: self.pong, self._deadline(timeout_ms))

    def wait(self, done, timeout_ms: int) -> bool:
        return self._wait(done, self._deadline(timeout_ms))

    def disconnect(self) -> None:
        try:
            self._send(packet(DISCONNECT, b""))
        finally:
            self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
