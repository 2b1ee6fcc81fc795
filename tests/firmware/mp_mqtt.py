# smartbins firmware tests: mqtt.py against a scripted fake socket, byte-exact (micropython)
# In the form of micropython-lib's test_umqtt_simple.py; prints one "name: ok" line per check.
import mqtt


class Clock:
    """Injected clock: waiting on a silent socket advances it by the wait."""

    def __init__(self):
        self.t = 0

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b

    def wait_readable(self, poller, ms):
        if poller.sock.inbox:
            return True
        self.t += ms
        return False


class FakeSock:
    def __init__(self, inbox=b""):
        self.inbox = inbox
        self.sent = b""

    def settimeout(self, t):
        pass

    def connect(self, addr):
        pass

    def write(self, data):
        self.sent += data

    def recv(self, n):
        out, self.inbox = self.inbox[:n], self.inbox[n:]
        return out

    def close(self):
        pass


class FakePoll:
    def register(self, sock, mask):
        self.sock = sock


class FakeSocketModule:
    def __init__(self, sock):
        self.sock = sock

    def getaddrinfo(self, host, port):
        return [(2, 1, 0, "", (host, port))]

    def socket(self):
        return self.sock


class FakeSelect:
    POLLIN = 1

    def poll(self):
        return FakePoll()


def client(sock):
    mqtt.socket = FakeSocketModule(sock)
    mqtt.select = FakeSelect()
    return mqtt.MQTTClient(Clock(), "kbh-1", "127.0.0.1", 1883, "kbh-1", "pw", 60)


def check(name, cond):
    print(name + ": " + ("ok" if cond else "FAIL"))


# CONNECT with will, username and password, persistent session; CONNACK session present.
s = FakeSock(b"\x20\x02\x01\x00")
c = client(s)
present = c.connect(False, 5000, ("sb/up/kbh-1/status", b'{"state":"lost"}'))
expected = (
    b"\x10\x42\x00\x04MQTT\x04\xec\x00\x3c"
    b"\x00\x05kbh-1"
    b"\x00\x12sb/up/kbh-1/status\x00\x10" + b'{"state":"lost"}' + b"\x00\x05kbh-1\x00\x02pw"
)
check("connect bytes", s.sent == expected)
check("session present", present is True)

# CONNACK refused: not authorised (5) is an MQTTError with that code.
c = client(FakeSock(b"\x20\x02\x00\x05"))
try:
    c.connect(False, 5000)
    check("refused", False)
except mqtt.MQTTError as e:
    check("refused", e.code == 5)

# A silent broker: no CONNACK within the budget, on the injected clock.
c = client(FakeSock(b""))
try:
    c.connect(False, 5000)
    check("connack timeout", False)
except mqtt.MQTTError as e:
    check("connack timeout", e.code == -1 and c.clock.t >= 5000)

# QoS 1 PUBLISH, byte-exact, then its PUBACK (packet id 1).
s = FakeSock(b"\x20\x02\x00\x00")
c = client(s)
c.connect(True, 5000)
s.sent = b""
s.inbox = b"\x40\x02\x00\x01"
ok = c.publish("sb/up/kbh-1/reading", b"{}", 5000)
check("publish bytes", s.sent == b"\x32\x19\x00\x13sb/up/kbh-1/reading\x00\x01{}")
check("puback", ok)

# No PUBACK: False after the timeout, not an endless wait.
s.inbox = b""
t0 = c.clock.t
check("puback timeout", c.publish("t", b"x", 5000) is False and c.clock.t - t0 >= 5000)

# Retained publish sets the retain bit.
s.sent = b""
s.inbox = b"\x40\x02\x00\x03"
c.publish("t", b"x", 5000, retain=True)
check("retain bit", s.sent[0] == 0x33)

# SUBSCRIBE two topics at QoS 1; SUBACK.
s.sent = b""
s.inbox = b"\x90\x04\x00\x04\x01\x01"
ok = c.subscribe(("sb/down/kbh-1/config", "sb/down/kbh-1/ack"), 5000)
check(
    "subscribe bytes",
    s.sent == b"\x82\x2d\x00\x04\x00\x14sb/down/kbh-1/config\x01\x00\x11sb/down/kbh-1/ack\x01",
)
check("suback", ok)

# An incoming QoS 1 PUBLISH of 20,000 bytes (3-byte remaining length), split across reads:
# delivered whole, then acknowledged with its packet id; then the PINGRESP ends the sync.
got = []
c.on_message = lambda t, p: got.append((t, p))
payload = b"a" * 20000
topic = b"sb/down/kbh-1/ack"
body = b"\x00\x11" + topic + b"\x12\x34" + payload
n = len(body)
rl = bytes((n & 0x7F | 0x80, (n >> 7) & 0x7F | 0x80, n >> 14))
s.sent = b""
s.inbox = b"\x32" + rl + body + b"\xd0\x00"
ok = c.sync(2000)
check("sync", ok)
check("incoming publish", got == [("sb/down/kbh-1/ack", payload)])
check("puback sent", s.sent == b"\xc0\x00\x40\x02\x12\x34")

# DISCONNECT.
s.sent = b""
c.disconnect()
check("disconnect", s.sent == b"\xe0\x00")
