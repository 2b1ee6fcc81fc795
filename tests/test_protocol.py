"""The wire protocol: round trips over the valid range, and every malformed input named."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from strategies import messages, mutated, readings

from smartbins import protocol as p
from smartbins.protocol import PayloadError, Reason

DEV = "bin-sensor-7"
TOPIC = f"sb/up/{DEV}/reading"
BATCH_TOPIC = f"sb/up/{DEV}/batch"


def good() -> dict:
    return {
        "v": 1,
        "dev": DEV,
        "seq": 41,
        "boot": 3,
        "ts": 1_764_000_000_000,
        "mm": 812,
        "fill": 63.5,
        "temp": 7.25,
        "tilt": 2.0,
        "bat": 3712,
        "rssi": -71,
        "dropped": 0,
        "interval": 3600,
        "cal": 2,
        "fw": "1.0.0",
        "flags": 0,
        "err": [],
    }


def enc(obj: object) -> bytes:
    return json.dumps(obj).encode()


def without(key: str) -> dict:
    d = good()
    del d[key]
    return d


def with_(**kw: object) -> dict:
    d = good()
    d.update(kw)
    return d


# (id, topic, payload, expected reason)
MALFORMED: list[tuple[str, str, bytes, Reason]] = [
    ("empty payload", TOPIC, b"", Reason.BAD_JSON),
    ("truncated", TOPIC, enc(good())[:-7], Reason.BAD_JSON),
    ("truncated at one byte", TOPIC, b"{", Reason.BAD_JSON),
    ("trailing garbage", TOPIC, enc(good()) + b"}", Reason.BAD_JSON),
    ("not json", TOPIC, b"hello", Reason.BAD_JSON),
    ("deep nesting", TOPIC, b"[" * 500 + b"]" * 500, Reason.NOT_OBJECT),
    (
        "nesting past the recursion limit",
        BATCH_TOPIC,
        b'{"readings":' + b"[" * 15000 + b"]" * 15000 + b"}",
        Reason.BAD_JSON,
    ),
    ("bad utf-8", TOPIC, b'{"v":1,"dev":"\xff"}', Reason.BAD_UTF8),
    ("utf-16 bom", TOPIC, "\ufeff{}".encode("utf-16"), Reason.BAD_UTF8),
    ("array at top", TOPIC, b"[1,2]", Reason.NOT_OBJECT),
    ("string at top", TOPIC, b'"reading"', Reason.NOT_OBJECT),
    ("null at top", TOPIC, b"null", Reason.NOT_OBJECT),
    ("NaN literal", TOPIC, enc(good()).replace(b'"fill": 63.5', b'"fill": NaN'), Reason.NON_FINITE),
    (
        "Infinity literal",
        TOPIC,
        enc(good()).replace(b'"temp": 7.25', b'"temp": Infinity'),
        Reason.NON_FINITE,
    ),
    (
        "overflowing float",
        TOPIC,
        enc(good()).replace(b'"temp": 7.25', b'"temp": 1e400'),
        Reason.NON_FINITE,
    ),
    ("duplicate key", TOPIC, enc(good())[:-1] + b', "seq": 42}', Reason.DUPLICATE_KEY),
    ("oversize", TOPIC, enc(with_(fw="x" * 2000)), Reason.OVERSIZE),
    ("unknown version", TOPIC, enc(with_(v=2)), Reason.SCHEMA_VERSION),
    ("version as string", TOPIC, enc(with_(v="1")), Reason.SCHEMA_VERSION),
    ("version true", TOPIC, enc(with_(v=True)), Reason.SCHEMA_VERSION),
    ("no version", TOPIC, enc(without("v")), Reason.MISSING_FIELD),
    ("no device", TOPIC, enc(without("dev")), Reason.MISSING_FIELD),
    ("no seq", TOPIC, enc(without("seq")), Reason.MISSING_FIELD),
    ("no timestamp", TOPIC, enc(without("ts")), Reason.MISSING_FIELD),
    ("null seq", TOPIC, enc(with_(seq=None)), Reason.MISSING_FIELD),
    ("wrong device for topic", TOPIC, enc(with_(dev="other-device")), Reason.DEVICE_MISMATCH),
    ("device with slash", TOPIC, enc(with_(dev="a/b")), Reason.BAD_DEVICE_ID),
    ("device with plus", TOPIC, enc(with_(dev="a+")), Reason.BAD_DEVICE_ID),
    ("device number", TOPIC, enc(with_(dev=7)), Reason.BAD_DEVICE_ID),
    ("seq as string", TOPIC, enc(with_(seq="41")), Reason.WRONG_TYPE),
    ("seq as float", TOPIC, enc(with_(seq=41.0)), Reason.WRONG_TYPE),
    ("seq as bool", TOPIC, enc(with_(seq=True)), Reason.WRONG_TYPE),
    ("negative seq", TOPIC, enc(with_(seq=-1)), Reason.OUT_OF_RANGE),
    ("seq over 31 bits", TOPIC, enc(with_(seq=2**31)), Reason.OUT_OF_RANGE),
    ("huge integer", TOPIC, enc(with_(seq=10**30)), Reason.OUT_OF_RANGE),
    ("timestamp in seconds", TOPIC, enc(with_(ts=1_764_000_000)), Reason.OUT_OF_RANGE),
    ("timestamp 1970", TOPIC, enc(with_(ts=5000)), Reason.OUT_OF_RANGE),
    ("timestamp year 2200", TOPIC, enc(with_(ts=7_258_118_400_000)), Reason.OUT_OF_RANGE),
    ("distance negative", TOPIC, enc(with_(mm=-5)), Reason.OUT_OF_RANGE),
    ("distance 100 m", TOPIC, enc(with_(mm=100_000)), Reason.OUT_OF_RANGE),
    ("distance float", TOPIC, enc(with_(mm=812.5)), Reason.WRONG_TYPE),
    ("fill as string", TOPIC, enc(with_(fill="63%")), Reason.WRONG_TYPE),
    ("fill impossible", TOPIC, enc(with_(fill=5000.0)), Reason.OUT_OF_RANGE),
    (
        "temperature below absolute plausibility",
        TOPIC,
        enc(with_(temp=-300.0)),
        Reason.OUT_OF_RANGE,
    ),
    ("tilt over 180", TOPIC, enc(with_(tilt=270.0)), Reason.OUT_OF_RANGE),
    ("battery negative", TOPIC, enc(with_(bat=-1)), Reason.OUT_OF_RANGE),
    ("rssi positive", TOPIC, enc(with_(rssi=10)), Reason.OUT_OF_RANGE),
    ("interval zero", TOPIC, enc(with_(interval=0)), Reason.OUT_OF_RANGE),
    ("flags too wide", TOPIC, enc(with_(flags=0x10000)), Reason.OUT_OF_RANGE),
    ("firmware empty", TOPIC, enc(with_(fw="")), Reason.OUT_OF_RANGE),
    ("firmware not ascii", TOPIC, enc(with_(fw="1.0-ø")), Reason.BAD_VALUE),
    ("firmware number", TOPIC, enc(with_(fw=1)), Reason.WRONG_TYPE),
    ("error codes not a list", TOPIC, enc(with_(err=3)), Reason.WRONG_TYPE),
    ("error code zero", TOPIC, enc(with_(err=[0])), Reason.OUT_OF_RANGE),
    ("too many error codes", TOPIC, enc(with_(err=[1] * 9)), Reason.OUT_OF_RANGE),
    ("unknown field", TOPIC, enc(with_(colour="green")), Reason.UNKNOWN_FIELD),
    ("fill without distance", TOPIC, enc(without("mm")), Reason.INCONSISTENT),
    (
        "no distance, no error",
        TOPIC,
        enc({k: v for k, v in good().items() if k not in ("mm", "fill")}),
        Reason.INCONSISTENT,
    ),
    ("not a smartbins topic", "home/kitchen/temp", enc(good()), Reason.BAD_TOPIC),
    ("unknown kind", f"sb/up/{DEV}/selfie", enc(good()), Reason.BAD_TOPIC),
    ("device down topic", f"sb/down/{DEV}/reading", enc(good()), Reason.BAD_TOPIC),
    ("bad device in topic", "sb/up/bad device/reading", enc(good()), Reason.BAD_DEVICE_ID),
    ("batch: readings missing", BATCH_TOPIC, enc({"v": 1, "dev": DEV}), Reason.MISSING_FIELD),
    (
        "batch: readings not a list",
        BATCH_TOPIC,
        enc({"v": 1, "dev": DEV, "readings": {}}),
        Reason.WRONG_TYPE,
    ),
    ("batch: empty", BATCH_TOPIC, enc({"v": 1, "dev": DEV, "readings": []}), Reason.EMPTY_BATCH),
    (
        "batch: too many readings",
        BATCH_TOPIC,
        enc({"v": 1, "dev": DEV, "readings": [{}] * 101}),
        Reason.BATCH_TOO_LARGE,
    ),
    (
        "batch: oversize",
        BATCH_TOPIC,
        b'{"v":1,"dev":"x","readings":[' + b" " * 40000 + b"]}",
        Reason.OVERSIZE,
    ),
    (
        "batch: unknown envelope field",
        BATCH_TOPIC,
        enc({"v": 1, "dev": DEV, "readings": [], "x": 1}),
        Reason.UNKNOWN_FIELD,
    ),
    (
        "ack with reversed range",
        f"sb/down/{DEV}/ack",
        enc(
            {"v": 1, "dev": DEV, "server_ts": 1_764_000_000_000, "stored": [[5, 3]], "rejected": []}
        ),
        Reason.OUT_OF_RANGE,
    ),
    (
        "config with full below empty reversed",
        f"sb/down/{DEV}/config",
        enc(
            {
                "v": 1,
                "dev": DEV,
                "server_ts": 1_764_000_000_000,
                "cal": 1,
                "empty_mm": 100,
                "full_mm": 900,
                "interval": 3600,
                "interval_near_full": 900,
                "interval_low_battery": 14400,
                "near_full": 80,
                "low_battery": 3300,
                "fire_temp": 70,
                "fire_rise": 20,
                "tilt": 45,
            }
        ),
        Reason.INCONSISTENT,
    ),
    (
        "status with unknown state",
        f"sb/up/{DEV}/status",
        enc({"v": 1, "dev": DEV, "state": "dancing"}),
        Reason.BAD_VALUE,
    ),
]


def test_there_are_at_least_thirty_malformed_cases() -> None:
    assert len(MALFORMED) >= 30
    assert len({reason for *_, reason in MALFORMED}) >= 18


@pytest.mark.parametrize(
    ("topic", "payload", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_message_is_rejected_with_its_reason(
    topic: str, payload: bytes, reason: Reason
) -> None:
    with pytest.raises(PayloadError) as info:
        parse_or_first_rejection(topic, payload)
    assert info.value.reason == reason, str(info.value)
    assert str(info.value)  # a message for people, naming the field or the position


def parse_or_first_rejection(topic: str, payload: bytes) -> p.Message:
    msg = p.parse_message(topic, payload)
    if isinstance(msg, p.ReadingBatch) and msg.rejected:
        raise msg.rejected[0]
    return msg


def test_good_reading_decodes_to_its_fields() -> None:
    r = p.parse_message(TOPIC, enc(good()))
    assert r == p.Reading(
        device=DEV,
        seq=41,
        boot=3,
        ts_ms=1_764_000_000_000,
        fw="1.0.0",
        interval_s=3600,
        cal=2,
        distance_mm=812,
        fill_pct=63.5,
        temp_c=7.25,
        tilt_deg=2.0,
        battery_mv=3712,
        rssi_dbm=-71,
    )


def test_real_sensor_states_are_valid_readings_with_flags() -> None:
    # An echo timeout, a fire temperature and an overfull bin are all valid, flagged readings.
    timeout = {k: v for k, v in good().items() if k not in ("mm", "fill")} | {
        "err": [1],
        "flags": int(p.Flag.SENSOR_ERROR),
    }
    fire = with_(temp=310.0, flags=int(p.Flag.FIRE))
    overfull = with_(fill=140.0, mm=20)
    got = [p.parse_message(TOPIC, enc(obj)) for obj in (timeout, fire, overfull)]
    assert all(isinstance(r, p.Reading) for r in got)
    t, f, o = got
    assert (t.flags, t.errors, t.distance_mm, t.fill_pct) == (  # type: ignore[union-attr]
        p.Flag.SENSOR_ERROR, (int(p.SensorError.ECHO_TIMEOUT),), None, None
    )
    assert (f.flags, f.temp_c) == (p.Flag.FIRE, 310.0)  # type: ignore[union-attr]
    assert (o.flags, o.fill_pct, o.distance_mm) == (0, 140.0, 20)  # type: ignore[union-attr]


def test_messages_name_field_value_and_position() -> None:
    with pytest.raises(PayloadError, match=r"temp: 900.5 is out of range \[-60, 500\] °C"):
        p.parse_message(TOPIC, enc(with_(temp=900.5)))
    with pytest.raises(PayloadError, match=r"at line 1 column \d+ \(char \d+\)"):
        p.parse_message(TOPIC, enc(good())[:-3])
    batch = {
        "v": 1,
        "dev": DEV,
        "readings": [without("dev") | {"seq": 1}, without("dev") | {"seq": 2, "tilt": 999.0}],
    }
    for item in batch["readings"]:
        item.pop("v")
    msg = p.parse_message(BATCH_TOPIC, enc(batch))
    assert isinstance(msg, p.ReadingBatch)
    (rej,) = msg.rejected
    assert str(rej).startswith("readings[1].tilt: 999.0 is out of range")
    assert (rej.index, rej.seq, rej.device) == (1, 2, DEV)


def test_batch_with_one_bad_reading_yields_the_good_ones_and_one_rejection() -> None:
    items = []
    for seq in range(10):
        item = {k: v for k, v in good().items() if k not in ("v", "dev")}
        item["seq"] = seq
        item["ts"] += seq * 1000
        items.append(item)
    items[4]["fill"] = "full"
    msg = p.parse_message(BATCH_TOPIC, enc({"v": 1, "dev": DEV, "readings": items}))
    assert isinstance(msg, p.ReadingBatch)
    assert [r.seq for r in msg.readings] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert [(e.reason, e.seq, e.index) for e in msg.rejected] == [(Reason.WRONG_TYPE, 4, 4)]


def test_rejection_without_a_readable_seq_still_names_the_device() -> None:
    msg = p.parse_message(BATCH_TOPIC, enc({"v": 1, "dev": DEV, "readings": [{"seq": "x"}, 5]}))
    assert isinstance(msg, p.ReadingBatch)
    assert [(e.reason, e.seq, e.device) for e in msg.rejected] == [
        (Reason.WRONG_TYPE, None, DEV),
        (Reason.NOT_OBJECT, None, DEV),
    ]


@settings(max_examples=300)
@given(messages)
def test_round_trip_is_identity_over_the_valid_range(msg: p.Message) -> None:
    topic, payload = p.encode_message(msg)
    assert p.parse_message(topic, payload) == msg


@settings(max_examples=500)
@given(
    st.binary(max_size=2048),
    st.sampled_from(
        [TOPIC, BATCH_TOPIC, f"sb/up/{DEV}/status", f"sb/down/{DEV}/ack", f"sb/down/{DEV}/config"]
    ),
)
def test_arbitrary_bytes_give_a_message_or_payload_error(payload: bytes, topic: str) -> None:
    try:
        msg = p.parse_message(topic, payload)
    except PayloadError as e:
        assert isinstance(e.reason, Reason)
    else:
        assert isinstance(msg, p.Reading | p.ReadingBatch | p.Status | p.DeviceConfig | p.Ack)


def test_arbitrary_json_objects_give_a_reading_or_payload_error() -> None:
    """Objects near a good reading (fields kept, dropped or given any JSON value): each gives a
    Reading or a PayloadError with a reason. The outcomes are counted, and the test asserts
    that the reading branch and the field checks behind the envelope were all reached."""
    seen: Counter[str] = Counter()

    @settings(max_examples=300, derandomize=True)
    @given(mutated(good(), keep=0.9))
    def check(obj: dict) -> None:
        try:
            payload = json.dumps(obj).encode()
        except ValueError:
            return
        try:
            msg = p.parse_message(TOPIC, payload)
        except PayloadError as e:
            assert isinstance(e.reason, Reason)
            outcome = e.reason.value
        else:
            assert isinstance(msg, p.Reading)
            assert msg.device == DEV
            outcome = "reading"
        event(outcome)
        seen[outcome] += 1

    check()
    # The reading branch (36 of the 300 derandomized examples), and rejections by the field
    # checks behind the envelope.
    assert seen["reading"] >= 10, seen
    assert seen["wrong_type"] and seen["missing_field"], seen


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"seq": -1}, Reason.OUT_OF_RANGE),
        ({"device": "a/b"}, Reason.BAD_DEVICE_ID),
        ({"fill_pct": None}, Reason.INCONSISTENT),
    ],
)
def test_encoder_raises_the_same_error_type(change: dict, reason: Reason) -> None:
    fields = dict(
        device=DEV,
        seq=1,
        boot=0,
        ts_ms=1_764_000_000_000,
        fw="1",
        interval_s=60,
        distance_mm=1,
        fill_pct=1.0,
    )
    with pytest.raises(PayloadError) as info:
        p.Reading(**(fields | change))
    assert info.value.reason == reason


@settings(max_examples=50)
@given(st.lists(readings("dev-b"), min_size=1, max_size=120, unique_by=lambda r: r.seq))
def test_backlog_splits_into_batches_within_limits(backlog: list[p.Reading]) -> None:
    messages_ = p.encode_batches("dev-b", backlog)
    seqs = []
    for topic, payload in messages_:
        assert topic == "sb/up/dev-b/batch"
        assert len(payload) <= p.MAX_BATCH_BYTES
        batch = p.parse_message(topic, payload)
        assert isinstance(batch, p.ReadingBatch)
        assert len(batch.readings) <= p.DEVICE_BATCH_READINGS
        seqs += [r.seq for r in batch.readings]
    assert seqs == sorted(r.seq for r in backlog)  # oldest first, none lost


def test_topics_separate_what_devices_write_from_what_they_read() -> None:
    for kind in p.UP_KINDS:
        assert p.topic_for(kind, DEV).startswith(f"sb/up/{DEV}/")
        assert p.parse_topic(p.topic_for(kind, DEV)) == (kind, DEV)
    for kind in p.DOWN_KINDS:
        assert p.topic_for(kind, DEV).startswith(f"sb/down/{DEV}/")
    assert p.shared_subscription() == "$share/gateways/sb/up/+/+"


@given(st.sets(st.integers(0, 500), max_size=60))
def test_ack_ranges_cover_exactly_the_acknowledged_seqs(seqs: set[int]) -> None:
    ack = p.Ack(DEV, 1_764_000_000_000, p.ranges_from_seqs(seqs))
    assert {s for s in range(0, 502) if ack.covers(s)} == seqs
    assert len(ack.stored) <= len(seqs)


# The decoder's fast path for valid values must give exactly what the full check gives.
_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.lists(st.integers(min_value=-5, max_value=70_000), max_size=3),
)
_SPEC_SETS = (p.READING_FIELDS, p.STATUS_FIELDS, p.CONFIG_FIELDS, p.ACK_FIELDS)


def _value_for(spec: p.FieldSpec) -> st.SearchStrategy:
    """Mostly valid values (so that the fast path is taken), edges and anything else."""
    lo = -(2**40) if spec.lo is None else spec.lo
    hi = 2**40 if spec.hi is None else spec.hi
    if spec.kind == "int":
        valid = st.integers(min_value=int(lo), max_value=int(hi))
    elif spec.kind == "float":
        valid = st.floats(min_value=lo, max_value=hi) | st.integers(int(lo), int(hi))
    elif spec.kind == "str":
        alphabet = st.characters(min_codepoint=32, max_codepoint=126)
        n_lo = 0 if spec.lo is None else int(spec.lo)
        n_hi = 40 if spec.lo is None else int(spec.hi or spec.lo)
        valid = st.text(alphabet, min_size=n_lo, max_size=n_hi)
    else:
        valid = st.none()
    edges = st.sampled_from([lo, hi, lo - 1, hi + 1, float(lo), float(hi) + 0.5])
    return st.one_of(valid, valid, valid, edges, _ANY_VALUE)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SPEC_SETS), st.data())
def test_fast_field_checks_agree_with_the_full_check(specs: tuple, data: st.DataObject) -> None:
    obj = {s.key: data.draw(_value_for(s), label=s.key) for s in specs}
    try:
        expected: dict | PayloadError = {
            s.attr: p._check_value(s, obj[s.key], s.key, device="d-1", seq=None) for s in specs
        }
    except PayloadError as e:
        expected = e
    allowed = frozenset(s.key for s in specs)
    try:
        got: dict | PayloadError = p._fields_from(obj, specs, "", allowed, "d-1")
    except PayloadError as e:
        got = e
    if isinstance(expected, PayloadError):
        assert isinstance(got, PayloadError), (obj, got)
        assert got.reason == expected.reason
    else:
        assert not isinstance(got, PayloadError), got
        if "errors" in expected and expected["errors"] is None:
            expected["errors"] = ()  # the decoder's default for an absent list
        got = {k: v for k, v in got.items() if k in expected}
        assert got == expected
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}
