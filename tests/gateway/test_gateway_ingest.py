"""The gateway's pure core in memory: decode, per-reading validation, batching, acks, dedup."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import event, given, settings
from hypothesis import strategies as st
from strategies import json_values, mutated

from gateway import ingest
from smartbins import protocol as p

NOW = 1_764_000_000_000
TOL = 300_000


def reading(seq: int, dev: str = "kbh-1", ts: int | None = None) -> p.Reading:
    return p.Reading(
        dev, seq, 1, ts if ts is not None else NOW - 10_000 + seq, "1.0", 3600,
        distance_mm=500, fill_pct=50.0,
    )  # fmt: skip


def decode(msg: p.Message, now: int = NOW) -> ingest.Inbound:
    return ingest.decode(*p.encode_message(msg), now, TOL)


def test_a_reading_and_a_batch_decode_to_readings() -> None:
    assert decode(reading(1)).readings == [reading(1)]
    batch = p.ReadingBatch("kbh-1", tuple(reading(s) for s in range(3)))
    got = decode(batch)
    assert got.readings == list(batch.readings) and got.dead == []


def test_future_timestamps_are_dead_lettered_old_ones_never() -> None:
    ok_edge = reading(1, ts=NOW + TOL)
    too_far = reading(2, ts=NOW + TOL + 1)
    ancient = reading(3, ts=p.TS_MIN_MS)
    got = decode(p.ReadingBatch("kbh-1", (ok_edge, too_far, ancient)))
    assert got.readings == [ok_edge, ancient]
    (dl,) = got.dead
    assert (dl.reason, dl.seq, dl.index, dl.device) == (p.Reason.FUTURE_TIMESTAMP, 2, 1, "kbh-1")
    assert dl.detail.startswith("readings[1].ts:")


def test_bad_readings_in_a_batch_keep_their_index_and_seq() -> None:
    good = p.reading_to_wire(reading(0))
    items = [good, {**good, "seq": 1, "temp": 900.0}, "nope", {**good, "seq": 3, "ts": NOW + 10**9}]
    payload = json.dumps({"v": 1, "dev": "kbh-1", "readings": items}).encode()
    got = ingest.decode("sb/up/kbh-1/batch", payload, NOW, TOL)
    assert [r.seq for r in got.readings] == [0]
    assert sorted((d.reason, d.seq, d.index) for d in got.dead) == sorted(
        [
            (p.Reason.OUT_OF_RANGE, 1, 1),
            (p.Reason.NOT_OBJECT, None, 2),
            (p.Reason.FUTURE_TIMESTAMP, 3, 3),
        ]
    )
    assert all(d.payload == payload and d.topic == "sb/up/kbh-1/batch" for d in got.dead)


def test_a_message_bad_as_a_whole_is_one_dead_letter_with_the_topic_device() -> None:
    got = ingest.decode("sb/up/kbh-9/reading", b"\xff\xfe", NOW, TOL)
    (dl,) = got.dead
    assert (dl.reason, dl.device, dl.seq) == (p.Reason.BAD_UTF8, "kbh-9", None)
    got = ingest.decode(
        "sb/up/kbh-9/reading", json.dumps({"v": 1, "dev": "kbh-8"}).encode(), NOW, TOL
    )
    assert got.dead[0].reason == p.Reason.DEVICE_MISMATCH and got.dead[0].device == "kbh-9"
    got = ingest.decode("sb/up/bad+id/reading", b"{}", NOW, TOL)
    assert got.dead[0].device is None  # published on sb/svc/deadletter/_unknown
    assert p.encode_message(got.dead[0])[0] == "sb/svc/deadletter/_unknown"


def test_status_is_passed_on() -> None:
    got = decode(p.Status("kbh-1", "online", battery_mv=3700))
    assert got.status == p.Status("kbh-1", "online", battery_mv=3700) and not got.readings


def test_batcher_flushes_on_size_or_age_with_whole_messages() -> None:
    b = ingest.Batcher(max_points=100, max_age_ms=200)
    assert b.wait_ms(0) is None and not b.due(0)
    m = decode(p.ReadingBatch("kbh-1", tuple(reading(s) for s in range(60))))
    b.add(m, now_ms=1000)
    assert not b.due(1000) and b.wait_ms(1100) == 100
    assert b.due(1200)  # age
    b.add(decode(p.ReadingBatch("kbh-1", tuple(reading(s) for s in range(60, 110)))), 1001)
    assert b.due(1001)  # size: 110 points
    first = b.take()
    assert first.size == 60 and len(b) == 1  # messages are never split across writes
    assert b.take().size == 50 and len(b) == 0 and b.points == 0


def test_acks_group_per_device_and_cover_dead_letters() -> None:
    msgs = [
        decode(p.ReadingBatch("a", tuple(reading(s, "a") for s in (1, 2, 3, 7)))),
        decode(reading(4, "b")),
        decode(reading(9, "a", ts=NOW + 10**7)),  # future: rejected
    ]
    batch = ingest.Batch(msgs)
    batch.reject_stored(reading(7, "a"), "field type conflict")
    acks = {a.device: a for a in batch.acks(NOW)}
    assert acks["a"].stored == ((1, 3),) and acks["a"].rejected == ((7, 7), (9, 9))
    assert acks["b"].stored == ((4, 4),) and acks["b"].rejected == ()
    reasons = sorted(d.reason.value for d in batch.dead_letters())
    assert reasons == ["future_timestamp", "store_rejected"]
    (sr,) = [d for d in batch.dead_letters() if d.reason == p.Reason.STORE_REJECTED]
    assert (sr.seq, sr.index, sr.detail) == (7, 3, "field type conflict")


def test_the_same_point_twice_in_one_write_is_written_once_and_acked_for_both() -> None:
    a, b = decode(reading(5)), decode(reading(5))  # a redelivery and a resend
    a.token, b.token = "m1", "m2"
    batch = ingest.Batch([a, b])
    assert len(batch.reading_points()) == 1
    assert [m.token for m in batch.messages] == ["m1", "m2"]
    assert batch.acks(NOW)[0].stored == ((5, 5),)


def test_many_ranges_split_into_several_acks_within_limits() -> None:
    seqs = range(0, 2 * 400, 2)  # 400 gaps: 400 ranges
    msgs = [decode(reading(s, ts=NOW - 10**6 + s)) for s in seqs]
    acks = ingest.Batch(msgs).acks(NOW)
    assert len(acks) == 3
    covered = {s for a in acks for lo, hi in a.stored for s in range(lo, hi + 1)}
    assert covered == set(seqs)
    for a in acks:
        p.parse_message(*p.encode_message(a))  # within the protocol's limits


def test_log_limiter_once_per_device_per_interval() -> None:
    lim = ingest.LogLimiter(60_000)
    assert lim.allow("a", 0) == (True, 0)
    assert lim.allow("a", 59_999) == (False, 0)
    assert lim.allow("b", 1) == (True, 0)
    assert lim.allow("a", 60_000) == (True, 1)


def _body(seq: int) -> dict[str, object]:
    wire = p.reading_to_wire(reading(seq))
    return {k: v for k, v in wire.items() if k not in ("v", "dev")}


#: Batches close to valid: envelope fields mostly kept, ``readings`` a list of readings each
#: mostly valid (fields kept, dropped or given any JSON value); sometimes not a list at all.
batches = st.builds(
    lambda env, items: json.dumps({**env, "readings": items} if items is not None else env),
    mutated({"v": 1, "dev": "kbh-1"}, keep=0.95),
    st.integers(0, 9).flatmap(
        lambda k: st.lists(
            st.integers(0, 1000).flatmap(lambda s: mutated(_body(s), keep=0.95)),
            min_size=1,
            max_size=6,
        )
        if k < 8
        else st.none() | json_values
    ),
).map(str.encode)


def test_every_message_is_readings_status_or_dead_letters_never_an_exception() -> None:
    """The invariant the gateway's "bad input never stops good input" rests on: any payload on
    any upstream topic gives readings, a status or dead letters, never an exception; in a batch
    every item is either a reading or a dead letter with its index. The outcomes are counted,
    and the test asserts that batches mixing good and bad readings were reached."""
    seen: Counter[str] = Counter()

    junk = st.binary(max_size=300) | st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(
            st.sampled_from(["v", "dev", "seq", "ts", "readings", "mm", "fill", "zz"]),
            json_values,
        ),
    )
    one_reading = mutated({"v": 1, "dev": "kbh-1", **_body(7)}, keep=0.9).map(
        lambda d: json.dumps(d).encode()
    )

    # The topic's device is mostly the one the near-valid payloads name (else they all stop at
    # the device check); any kind and device for the junk.
    topic_dev = st.sampled_from(["kbh-1"] * 5 + ["x", "bad+", ""])
    any_dev = st.sampled_from(["kbh-1", "x", "bad+", ""])

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(
        message=st.one_of(
            st.tuples(st.sampled_from(["reading", "batch", "status", "config"]), any_dev, junk),
            *[st.tuples(st.just("batch"), topic_dev, batches)] * 3,  # the target: weighted
            st.tuples(st.just("reading"), topic_dev, one_reading),
        ),
    )
    def check(message: tuple[str, str, bytes]) -> None:
        kind, dev, payload = message
        got = ingest.decode(f"sb/up/{dev}/{kind}", payload, NOW, TOL)
        assert got.readings or got.dead or got.status is not None
        for d in got.dead:
            assert isinstance(d.reason, p.Reason)
            p.parse_message(*p.encode_message(d))  # every dead letter can be published
        per_reading = [d for d in got.dead if d.index is not None]
        if per_reading:
            items = json.loads(payload)["readings"]
            assert len(got.readings) + len(per_reading) == len(items)
            assert sorted({d.index for d in per_reading}) == sorted(d.index for d in per_reading)
            assert [r.seq for r in got.readings] == [
                items[i]["seq"] for i in range(len(items)) if i not in {d.index for d in got.dead}
            ]
        outcome = (
            "batch: good and bad readings"
            if per_reading and got.readings
            else "batch: bad readings only"
            if per_reading
            else "batch: good readings only"
            if kind == "batch" and got.readings
            else "readings"
            if got.readings
            else "status"
            if got.status
            else "dead letter"
        )
        event(outcome)
        seen[outcome] += 1

    check()
    # The target, per-reading validation inside a batch: 18 mixed batches of the 300 examples
    # (derandomized, so the count is the same on every run; random runs gave 2-40).
    assert seen["batch: good and bad readings"] >= 5, seen
    assert seen["readings"] and seen["dead letter"], seen


def test_an_online_status_is_answered_with_the_current_time() -> None:
    """docs/protocol.md: every `online` status gets an acknowledgement with server_ts, even
    with nothing to acknowledge (a device without NTP learns the time from it); `lost` none."""
    batch = ingest.Batch(
        [
            decode(p.Status("kbh-1", "online", battery_mv=3700)),
            decode(p.Status("kbh-2", "lost")),
            decode(p.Status("kbh-3", "online")),
            decode(reading(4, "kbh-3")),
        ]
    )
    acks = {a.device: a for a in batch.acks(NOW + 5)}
    assert set(acks) == {"kbh-1", "kbh-3"}
    assert acks["kbh-1"] == p.Ack("kbh-1", NOW + 5, (), ())
    assert acks["kbh-3"].stored == ((4, 4),) and acks["kbh-3"].server_ts_ms == NOW + 5
    assert p.parse_message(*p.encode_message(acks["kbh-1"])) == acks["kbh-1"]
