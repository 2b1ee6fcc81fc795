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
import errno
import os
import socket
import struct
from collections import deque
from dataclasses import dataclass
from typing import Any

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


def puback_packet(pid: int) -> bytes:
    return bytes((PUBACK << 4, 2, pid >> 8, pid & 0xFF))


def publish_packet(topic: str, payload: bytes, pid: int, retain: bool = False) -> bytes:
    return _packet(PUBLISH, 0x02 | (0x01 if retain else 0),
                   _str(topic) + struct.pack("!H", pid) + payload)


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


@dataclass
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    pid: int = 0  #: packet id (QoS 1), for a client that acknowledges by hand


_READ_SIZE = 65536


class Connection:
    """One MQTT connection (one device wake) on a non-blocking socket watched by the event
    loop's selector (``add_reader``), with no asyncio transport or stream in between.

    Why no transport: a device wake is a handful of tiny packets, and an asyncio transport's
    set-up (``create_connection``: address resolution, a writer callback for the connect, a
    waiter, two scheduled callbacks) and per-write bookkeeping cost more than the packets
    themselves at a thousand connects a second (bench/simulator_scale.py). Writes go straight
    to ``send``; only a write the kernel does not take whole is buffered until writable.
    Parsing happens on whole received buffers, with no per-packet task. Use :func:`connect`."""

    #: PUBACK incoming QoS 1 messages by itself (with the next packet); a subclass that must
    #: acknowledge only after it handled a message (the test acknowledger) sets this False
    auto_ack = True

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sock = sock
        self._fd = sock.fileno()
        self.session_present = False
        #: messages the session delivered, oldest first (PUBACKed with our next packet)
        self.messages: deque[Message] = deque()
        self._msg_waiter: asyncio.Future[Any] | None = None
        self._buf = b""
        self._wbuf = bytearray()
        #: PUBACKs owed for incoming messages, sent with our next packet (usually DISCONNECT):
        #: one loopback send less per wake, and QoS 1 allows it (unacknowledged ones are
        #: redelivered to the persistent session, and acknowledgements are idempotent)
        self._owed = b""
        self._pid = 0
        self._waiting: dict[tuple[int, int], asyncio.Future[bytes]] = {}
        self._connack: asyncio.Future[bytes] = loop.create_future()
        self._lost: asyncio.Future[Any] | None = None
        self.closed = False
        self.error: OSError | None = None  #: the socket error that ended the connection
        loop.add_reader(self._fd, self._on_readable)

    # ---------------------------------------------------------------- socket events

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._connection_lost(e)
            return
        if not data:
            self._connection_lost(None)
            return
        self.data_received(data)

    def _write(self, data: bytes) -> None:
        if self.closed:
            raise MqttError("connection closed")
        if self._wbuf:
            self._wbuf += data
            return
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0  # still connecting, or a full send buffer: wait until writable
        except OSError as e:
            self._connection_lost(e)
            raise MqttError(f"connection lost: {e}") from None
        if n < len(data):
            self._wbuf += data[n:]
            self.loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        try:
            n = self.sock.send(self._wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._connection_lost(e)
            return
        del self._wbuf[:n]
        if not self._wbuf:
            self.loop.remove_writer(self._fd)

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            length = buf[pos + 1]
            i = pos + 2
            if length & 0x80:  # multi-byte remaining length (rare: long messages)
                length, mult, i = length & 0x7F, 128, pos + 1
                while True:
                    i += 1
                    if i >= end:
                        self._buf = buf[pos:]
                        return
                    b = buf[i]
                    length += (b & 0x7F) * mult
                    if not b & 0x80:
                        break
                    mult *= 128
                i += 1
            if end < i + length:
                break
            head = buf[pos]
            self._dispatch(head >> 4, head & 0x0F, buf[i : i + length])
            pos = i + length
        self._buf = buf[pos:] if pos < end else b""

    def _dispatch(self, kind: int, flags: int, body: bytes) -> None:
        if kind in (PUBACK, SUBACK):
            fut = self._waiting.pop((kind, (body[0] << 8) | body[1]), None)
            if fut is not None and not fut.done():
                fut.set_result(body[2:])
        elif kind == PUBLISH:
            qos = (flags >> 1) & 0x03
            n = (body[0] << 8) | body[1]
            topic = body[2 : 2 + n].decode()
            rest = body[2 + n :]
            pid = 0
            if qos:
                pid = (rest[0] << 8) | rest[1]
                if self.auto_ack:
                    self._owed += b"\x40\x02" + rest[:2]
                rest = rest[2:]
            self.messages.append(Message(topic, rest, qos, bool(flags & 1), pid))
            waiter = self._msg_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif kind == CONNACK and not self._connack.done():
            self._connack.set_result(body)

    def _connection_lost(self, exc: OSError | None) -> None:
        if self.closed:
            return
        self.error = exc
        self._close_socket()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        err = MqttError("connection closed by the broker")
        if not self._connack.done():
            self._connack.set_exception(err)
            self._connack.exception()  # nobody may be waiting: mark it retrieved
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(err)
        self._waiting.clear()
        if self._msg_waiter is not None and not self._msg_waiter.done():
            self._msg_waiter.set_result(None)

    def _close_socket(self) -> None:
        self.closed = True
        self.loop.remove_reader(self._fd)
        if self._wbuf:
            self.loop.remove_writer(self._fd)
            self._wbuf.clear()
        self.sock.close()

    # ---------------------------------------------------------------- requests

    def _next_pid(self) -> int:
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def _request(self, kind: int, pid: int, packet: bytes, timeout: float) -> bytes:
        if self.closed:
            raise MqttError("connection closed")
        fut: asyncio.Future[bytes] = self.loop.create_future()
        self._waiting[(kind, pid)] = fut
        if self._owed:
            packet, self._owed = self._owed + packet, b""
        self._write(packet)
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

    async def next_message(self, timeout: float) -> Message | None:
        """The next message the session delivers, or None after ``timeout`` seconds (or when
        the connection is gone)."""
        if not self.messages and not self.closed and timeout > 0:
            waiter = self._msg_waiter = self.loop.create_future()
            timer = self.loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            except TimeoutError:
                pass
            finally:
                timer.cancel()
                self._msg_waiter = None
        return self.messages.popleft() if self.messages else None

    async def disconnect(self, timeout: float = 2.0) -> None:
        """DISCONNECT, then let the broker close first: the side that closes first keeps the
        TCP TIME_WAIT, and on the client side each one holds an ephemeral port for 60 s, which
        caps a single client address at about 470 connects/s (28k ports / 60 s)."""
        if not self.closed:
            packet, self._owed = self._owed + b"\xe0\x00", b""
            lost = self._lost = self.loop.create_future()
            try:
                self._write(packet)
            except MqttError:
                return
            timer = self.loop.call_later(timeout, _expire, lost)
            try:
                await lost
            except TimeoutError:
                pass
            finally:
                timer.cancel()
            if not self.closed:
                self._close_socket()

    def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT (a power cut mid-wake): the will fires."""
        if not self.closed:
            self._connection_lost(None)


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
    packet: bytes | None = None,
    factory: type[Connection] | None = None,
) -> Connection:
    """Open a connection and wait for the CONNACK (all within ``timeout``).

    ``host`` is a numeric IPv4 address (no name lookup on the event loop). ``packet`` is the
    CONNECT packet when the caller keeps it (a device's never changes): then ``client_id``,
    ``username``, ``password``, ``will``, ``clean`` and ``keepalive`` are not used."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # On loopback the handshake completes inside this call (EINPROGRESS is still
        # returned): the CONNECT can be written at once; a connect still pending (a full
        # accept queue) makes the write wait until the socket is writable.
        err = sock.connect_ex((host, port))
    except OSError as e:
        sock.close()
        raise MqttError(f"cannot reach the broker at {host}:{port}: {e}") from None
    if err not in (0, errno.EINPROGRESS):
        sock.close()
        raise MqttError(f"cannot reach the broker at {host}:{port}: "
                        f"[Errno {err}] {os.strerror(err)}")
    conn = (factory or Connection)(sock, loop)
    if packet is None:
        packet = connect_packet(client_id, username, password, will, clean, keepalive)
    timer = loop.call_later(timeout, _expire, conn._connack)
    try:
        conn._write(packet)
        body = await conn._connack
    except TimeoutError:
        conn.abort()
        raise MqttError(f"no CONNACK within {timeout:g} s") from None
    except MqttError:
        conn.abort()
        if conn.error is not None:
            raise MqttError(f"cannot reach the broker at {host}:{port}: {conn.error}") from None
        raise
    except BaseException:
        conn.abort()
        raise
    finally:
        timer.cancel()
    if len(body) != 2 or body[1] != 0:
        conn.abort()
        code = body[1] if len(body) == 2 else -1
        raise MqttError(f"connection refused: {CONNACK_CODES.get(code, code)}")
    conn.session_present = bool(body[0] & 0x01)
    return conn
