"""The virtual device's state machine follows docs/protocol.md "Device behaviour"."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import readings

from simulator.device import Entry, VirtualDevice
from smartbins import protocol as p

T0 = 1_760_000_000_000
CFG = p.DeviceConfig("dev-1", T0, 1, 1000, 100, interval_s=600)
FIELDS = {"interval_s": 600, "distance_mm": 500, "fill_pct": 55.6}


def _device(capacity=2000):
    d = VirtualDevice("dev-1", CFG, capacity=capacity, boot_at_ms=T0)
    d.reboot(T0)
    return d


def _decode(outs):
    readings = []
    for o in outs:
        msg = p.parse_message(o.topic, o.payload)
        readings.extend(msg.readings if isinstance(msg, p.ReadingBatch) else [msg])
    return readings


def test_reading_before_first_connect_is_estimated_then_converted_once():
    d = _device()
    d.take_reading(T0 + 5_000, FIELDS, 0)
    d.take_reading(T0 + 605_000, FIELDS, 0)
    assert all(e.ts_ms is None for e in d.flash.buffer)
    assert d.on_connect(T0 + 606_000, session_present=False) == [
        "sb/down/dev-1/config", "sb/down/dev-1/ack"]
    readings = _decode(d.outgoing(T0 + 606_000))
    assert [r.ts_ms for r in readings] == [T0 + 5_000, T0 + 605_000]
    assert all(r.flags & p.Flag.TIME_ESTIMATED for r in readings)
    # a resend carries the same timestamps
    again = _decode(d.outgoing(T0 + 606_000 + 10 * 60_000))
    assert [r.ts_ms for r in again] == [T0 + 5_000, T0 + 605_000]


def test_session_present_means_no_subscribe():
    d = _device()
    d.on_connect(T0, session_present=False)
    assert d.on_connect(T0 + 1000, session_present=True) == []
    # a broker that lost the session: subscribe again
    assert d.on_connect(T0 + 2000, session_present=False) != []


def test_batches_of_50_oldest_first_at_most_10_per_wake():
    d = _device()
    d.on_connect(T0, False)
    for k in range(620):
        d.take_reading(T0 + k * 1000, FIELDS, 0)
    outs = d.outgoing(T0 + 700_000)
    assert len(outs) == 10 and all(o.topic.endswith("/batch") for o in outs)
    seqs = [s for o in outs for s in o.seqs]
    assert seqs == list(range(500)) and all(len(o.seqs) == 50 for o in outs)
    rest = d.outgoing(T0 + 700_500)
    assert [s for o in rest for s in o.seqs] == list(range(500, 620))


def test_single_pending_reading_goes_as_a_reading_message():
    d = _device()
    d.on_connect(T0, False)
    d.take_reading(T0 + 1, FIELDS, 0)
    (out,) = d.outgoing(T0 + 2)
    assert out.topic == "sb/up/dev-1/reading"


def test_ack_frees_and_resend_waits_for_the_timeout():
    d = _device()
    d.on_connect(T0, False)
    for k in range(5):
        d.take_reading(T0 + k, FIELDS, 0)
    d.outgoing(T0 + 10)
    assert d.outgoing(T0 + 20) == []  # sent, not yet due again
    freed = d.on_message(p.Ack("dev-1", T0, stored=((0, 1),), rejected=((4, 4),)))
    assert freed == 3
    timeout = max(60, 600 // 2) * 1000
    assert d.outgoing(T0 + 10 + timeout - 1) == []
    assert [s for o in d.outgoing(T0 + 10 + timeout) for s in o.seqs] == [2, 3]


def test_full_buffer_drops_the_oldest_and_counts():
    dropped = []
    d = _device(capacity=3)
    d.on_drop = lambda seq, t: dropped.append(seq)
    for k in range(5):
        d.take_reading(T0 + k, FIELDS, 0)
    assert [e.seq for e in d.flash.buffer] == [2, 3, 4]
    assert dropped == [0, 1] and d.flash.dropped == 2
    assert d.flash.buffer[-1].fields["dropped"] == 2


def test_seq_and_boot_survive_reboots_and_earlier_boot_is_placed_before():
    d = _device()
    d.take_reading(T0 + 1000, FIELDS, 0)  # boot 1, clock never learned
    d.reboot(T0 + 50_000)
    d.take_reading(T0 + 60_000, FIELDS, 0)  # boot 2
    assert [(e.seq, e.boot) for e in d.flash.buffer] == [(0, 1), (1, 2)]
    d.on_connect(T0 + 70_000, False)
    ts = [e.ts_ms for e in d.flash.buffer]
    assert ts[1] == T0 + 60_000
    assert ts[0] == ts[1] - 600_000  # one interval before the next boot's first reading


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["read", "reboot", "connect", "ack"]),
                          st.integers(-5_000, 900_000)), min_size=1, max_size=60))
def test_timestamps_strictly_increase_and_seqs_never_repeat(events):
    """Whatever the order of wakes, reboots (clock lost), connects and acks, and even when the
    simulated clock steps backwards, every sent reading has a unique seq and per-device
    timestamps strictly increase with seq."""
    d = _device()
    t = T0 + 10_000_000
    sent: dict[int, int] = {}
    for kind, dt_ in events:
        t = max(d.boot_at_ms, t + dt_)
        if kind == "read":
            d.take_reading(t, FIELDS, 0)
        elif kind == "reboot":
            d.reboot(t)
        elif kind == "connect":
            d.on_connect(t, True)
            for r in _decode(d.outgoing(t)):
                assert sent.setdefault(r.seq, r.ts_ms) == r.ts_ms  # resends: same ts
        elif sent:
            d.on_message(p.Ack("dev-1", T0, stored=p.ranges_from_seqs(sent)))
    by_seq = sorted(sent.items())
    assert all(b[1] > a[1] for a, b in itertools.pairwise(by_seq))


def _entry_of(r: p.Reading) -> Entry:
    """A buffered entry holding exactly reading ``r`` (fields as the world gives them)."""
    fields = {k: getattr(r, k) for k in (
        "interval_s", "distance_mm", "fill_pct", "temp_c", "tilt_deg", "battery_mv",
        "rssi_dbm", "errors", "dropped", "fw", "cal")}
    if fields["fill_pct"] and fields["fill_pct"].is_integer():  # not -0.0: its int is 0
        fields["fill_pct"] = int(fields["fill_pct"])  # an int where a float goes: still a float
    return Entry(r.seq, r.boot, 0, r.ts_ms, fields, r.flags)


@settings(max_examples=100, deadline=None)
@given(st.lists(readings("dev-1"), min_size=1, max_size=60, unique_by=lambda r: r.seq))
def test_outgoing_payloads_are_the_protocol_encoders_bytes(rs):
    """The device encodes without building a Reading per send; the bytes must be exactly
    what protocol.encode_message gives for the same readings, single or in batches."""
    d = _device()
    d.on_connect(T0, False)
    rs = sorted(rs, key=lambda r: r.seq)
    d.flash.buffer.extend(_entry_of(r) for r in rs)
    outs = d.outgoing(T0)
    one = len(rs) == 1
    expected = [p.encode_message(rs[0])] if one else p.encode_batches("dev-1", rs)
    assert [(o.topic, o.payload) for o in outs] == expected
