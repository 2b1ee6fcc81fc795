"""A compact asyncio MQTT 3.1.1 client for virtual devices: what a device's wake needs, no more.

CONNECT (client id, username, password, last will, ``clean_session`` 0, keep-alive), SUBSCRIBE
at QoS 1, PUBLISH at QoS 1 waiting for the PUBACK, incoming PUBLISH (QoS 0/1, PUBACKed at once)
into a queue, DISCONNECT, and ``abort()`` (drop the TCP connection without DISCONNECT, so the
broker publishes the will). One connection per wake, like the firmware.

Why not paho: a paho client per device per wake costs a thread and a few milliseconds of
set-up; ten thousand devices waking every ten seconds need about a thousand connects a second
from one Python process, which a few hundred lines on one event loop can do (bench/
simulator_scale.py measures both). Protocol errors raise :class:`MqttError`.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class MqttError(Exception):
    """The broker refused, closed, or did not answer in time."""


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    n = len(body)
    length = bytearray()
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes([(kind << 4) | flags]) + bytes(length) + body


def connect_packet(
    client_id: str, username: str | None, password: str | None,
    will: tuple[str, bytes] | None, clean: bool, keepalive: int,
) -> bytes:
    flags = 0x02 if clean else 0
    payload = _str(client_id)
    if will is not None:
        flags |= 0x04 | (1 << 3) | 0x20  # will, QoS 1, retained (protocol: "lost" is retained)
        payload += _str(will[0]) + _str(will[1])
    if username is not None:
        flags |= 0x80
        payload += _str(username)
    if password is not None:
        flags |= 0x40
        payload += _str(password)
    body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + payload
    return _packet(CONNECT, 0, body)


def publish_packet(topic: str, payload: bytes, pid: int, retain: bool = False) -> bytes:
    return _packet(PUBLISH, 0x02 | (0x01 if retain else 0),
                   _str(topic) + struct.pack("!H", pid) + payload)


def _expire(fut: asyncio.Future[bytes]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


@dataclass
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Connection(asyncio.Protocol):
    """One MQTT connection (one device wake), as an asyncio Protocol: parsing happens in
    ``data_received`` on whole buffers, with no per-packet task (cheap enough for a thousand
    connects a second). Use :func:`connect` to make one."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.session_present = False
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self._buf = bytearray()
        #: PUBACKs owed for incoming messages, sent with our next packet (usually DISCONNECT):
        #: one loopback send less per wake, and QoS 1 allows it (unacknowledged ones are
        #: redelivered to the persistent session, and acknowledgements are idempotent)
        self._owed = bytearray()
        self._pid = 0
        self._waiting: dict[tuple[int, int], asyncio.Future[bytes]] = {}
        self._connack: asyncio.Future[bytes] = self.loop.create_future()
        # nobody may be waiting when the connection drops: mark the error as seen
        self._connack.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._lost: asyncio.Future[None] = self.loop.create_future()
        self.closed = False

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while len(buf) >= 2:
            mult, length, i = 1, 0, 1
            while True:
                if i >= len(buf):
                    return
                b = buf[i]
                length += (b & 0x7F) * mult
                i += 1
                if not b & 0x80:
                    break
                mult *= 128
            if len(buf) < i + length:
                return
            head = buf[0]
            body = bytes(buf[i : i + length])
            del buf[: i + length]
            self._dispatch(head >> 4, head & 0x0F, body)

    def _dispatch(self, kind: int, flags: int, body: bytes) -> None:
        if kind == CONNACK:
            if not self._connack.done():
                self._connack.set_result(body)
        elif kind in (PUBACK, SUBACK):
            pid = (body[0] << 8) | body[1]
            fut = self._waiting.pop((kind, pid), None)
            if fut is not None and not fut.done():
                fut.set_result(body[2:])
        elif kind == PUBLISH:
            qos = (flags >> 1) & 0x03
            n = (body[0] << 8) | body[1]
            topic = body[2 : 2 + n].decode()
            rest = body[2 + n :]
            if qos:
                self._owed += bytes([PUBACK << 4, 2]) + rest[:2]
                rest = rest[2:]
            self.messages.put_nowait(Message(topic, rest, qos, bool(flags & 1)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._lost.done():
            self._lost.set_result(None)
        err = MqttError("connection closed by the broker")
        if not self._connack.done():
            self._connack.set_exception(err)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(err)
        self._waiting.clear()

    # ---------------------------------------------------------------- requests

    def _next_pid(self) -> int:
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def _request(self, kind: int, pid: int, packet: bytes, timeout: float) -> bytes:
        if self.closed or self.transport is None:
            raise MqttError("connection closed")
        fut: asyncio.Future[bytes] = self.loop.create_future()
        self._waiting[(kind, pid)] = fut
        self.transport.write(self._take_owed() + packet)
        # a plain timer, not asyncio.timeout(): this runs several times per wake, and the
        # context manager costs several times more than the timer it sets
        timer = self.loop.call_later(timeout, _expire, fut)
        try:
            return await fut
        except TimeoutError:
            self._waiting.pop((kind, pid), None)
            raise MqttError(f"no {'PUBACK' if kind == PUBACK else 'SUBACK'} within "
                            f"{timeout:g} s") from None
        finally:
            timer.cancel()

    async def subscribe(self, topics: list[str], timeout: float = 5.0) -> bytes:
        pid = self._next_pid()
        body = struct.pack("!H", pid) + b"".join(_str(t) + b"\x01" for t in topics)
        granted = await self._request(SUBACK, pid, _packet(SUBSCRIBE, 0x02, body), timeout)
        if any(g == 0x80 for g in granted):
            raise MqttError(f"subscription refused: {topics}")
        return granted

    async def publish(self, topic: str, payload: bytes, retain: bool = False,
                      timeout: float = 5.0) -> None:
        pid = self._next_pid()
        await self._request(PUBACK, pid, publish_packet(topic, payload, pid, retain), timeout)

    def _take_owed(self) -> bytes:
        owed, self._owed = bytes(self._owed), bytearray()
        return owed

    async def next_message(self, timeout: float) -> Message | None:
        """The next message the session delivers, or None after ``timeout`` seconds."""
        if not self.messages.empty():
            return self.messages.get_nowait()
        try:
            async with asyncio.timeout(timeout):
                return await self.messages.get()
        except TimeoutError:
            return None

    async def disconnect(self, timeout: float = 2.0) -> None:
        """DISCONNECT, then let the broker close first: the side that closes first keeps the
        TCP TIME_WAIT, and on the client side each one holds an ephemeral port for 60 s, which
        caps a single client address at about 470 connects/s (28k ports / 60 s)."""
        if not self.closed and self.transport is not None:
            self.transport.write(self._take_owed() + b"\xe0\x00")
            try:
                async with asyncio.timeout(timeout):
                    await self._lost
            except TimeoutError:
                pass
            self.transport.close()
        self.closed = True

    def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT (a power cut mid-wake): the will fires."""
        if self.transport is not None:
            self.transport.abort()
        self.closed = True


async def connect(
    port: int,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    *,
    will: tuple[str, bytes] | None = None,
    clean: bool = False,
    keepalive: int = 60,
    timeout: float = 5.0,
    host: str = "127.0.0.1",
) -> Connection:
    """Open a connection and wait for the CONNACK (all within ``timeout``)."""
    loop = asyncio.get_running_loop()
    conn: Connection | None = None
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(Connection, host, port)
            assert conn.transport is not None
            conn.transport.write(
                connect_packet(client_id, username, password, will, clean, keepalive))
            body = await conn._connack
    except TimeoutError:
        if conn is not None:
            conn.abort()
        raise MqttError(f"no CONNACK within {timeout:g} s") from None
    except OSError as e:
        raise MqttError(f"cannot reach the broker at {host}:{port}: {e}") from None
    if len(body) != 2 or body[1] != 0:
        conn.abort()
        code = body[1] if len(body) == 2 else -1
        raise MqttError(f"connection refused: {CONNACK_CODES.get(code, code)}")
    conn.session_present = bool(body[0] & 0x01)
    return conn
