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
import contextlib
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


@dataclass
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Connection:
    """One MQTT connection (one device wake). Use :func:`connect` to make one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.session_present = False
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self._pid = 0
        self._waiting: dict[tuple[int, int], asyncio.Future[bytes]] = {}
        self._connack: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def _next_pid(self) -> int:
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def _read_packet(self) -> tuple[int, int, bytes]:
        head = await self.reader.readexactly(1)
        mult, length = 1, 0
        while True:
            b = (await self.reader.readexactly(1))[0]
            length += (b & 0x7F) * mult
            if not b & 0x80:
                break
            mult *= 128
        body = await self.reader.readexactly(length) if length else b""
        return head[0] >> 4, head[0] & 0x0F, body

    async def _loop(self) -> None:
        try:
            while True:
                kind, flags, body = await self._read_packet()
                if kind == CONNACK:
                    if not self._connack.done():
                        self._connack.set_result(body)
                elif kind in (PUBACK, SUBACK):
                    pid = struct.unpack("!H", body[:2])[0]
                    fut = self._waiting.pop((kind, pid), None)
                    if fut is not None and not fut.done():
                        fut.set_result(body[2:])
                elif kind == PUBLISH:
                    qos = (flags >> 1) & 0x03
                    n = struct.unpack("!H", body[:2])[0]
                    topic = body[2 : 2 + n].decode()
                    rest = body[2 + n :]
                    if qos:
                        pid = struct.unpack("!H", rest[:2])[0]
                        rest = rest[2:]
                        self.writer.write(_packet(PUBACK, 0, struct.pack("!H", pid)))
                    self.messages.put_nowait(Message(topic, rest, qos, bool(flags & 1)))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            err = MqttError("connection closed by the broker")
            if not self._connack.done():
                self._connack.set_exception(err)
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(err)
            self._waiting.clear()

    async def _request(self, kind: int, pid: int, packet: bytes, timeout: float) -> bytes:
        if self.closed:
            raise MqttError("connection closed")
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[(kind, pid)] = fut
        self.writer.write(packet)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._waiting.pop((kind, pid), None)
            raise MqttError(f"no {'PUBACK' if kind == PUBACK else 'SUBACK'} within "
                            f"{timeout:g} s") from None

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

    async def disconnect(self) -> None:
        if not self.closed:
            self.writer.write(_packet(DISCONNECT, 0, b""))
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.drain()
        await self._close()

    def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT (a power cut mid-wake): the will fires."""
        transport = self.writer.transport
        transport.abort()
        self.closed = True

    async def _close(self) -> None:
        self.closed = True
        self.writer.close()
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            await self.writer.wait_closed()


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
    """Open a connection and wait for the CONNACK (within ``timeout``)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as e:
        raise MqttError(f"cannot reach the broker at {host}:{port}: {e}") from None
    conn = Connection(reader, writer)
    conn._task = asyncio.get_running_loop().create_task(conn._loop())
    writer.write(connect_packet(client_id, username, password, will, clean, keepalive))
    try:
        body = await asyncio.wait_for(asyncio.shield(conn._connack), timeout)
    except TimeoutError:
        conn.abort()
        raise MqttError(f"no CONNACK within {timeout:g} s") from None
    except MqttError:
        await conn._close()
        raise
    if len(body) != 2 or body[1] != 0:
        await conn._close()
        code = body[1] if len(body) == 2 else -1
        raise MqttError(f"connection refused: {CONNACK_CODES.get(code, code)}")
    conn.session_present = bool(body[0] & 0x01)
    return conn
