"""The storage schema, checked against a real InfluxDB 1.x: one point per reading, resends
overwrite, and a device move changes nothing already stored."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from strategies import readings

from smartbins import protocol as p
from smartbins import storage
from smartbins.registry import Registry

_measurements = itertools.count()


def a_reading(seq: int, device: str = "dev-s1", **kw: object) -> p.Reading:
    base = dict(
        device=device,
        seq=seq,
        boot=1,
        ts_ms=1_764_000_000_000 + seq * 60_000,
        fw="1.0.0",
        interval_s=60,
        distance_mm=900 - seq,
        fill_pct=10.0 + seq,
        temp_c=5.5,
        battery_mv=3700,
    )
    base.update(kw)
    return p.Reading(**base)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(readings())
def test_point_key_depends_only_on_device_and_time(r: p.Reading) -> None:
    point = storage.reading_point(r)
    assert point.key == ("reading", (("device", r.device),), r.ts_ms * 10**6 + r.seq % 10**6)
    # Every numeric field is a float, so InfluxDB never fixes a field as integer.
    assert all(isinstance(v, float) for k, v in point.fields if k not in ("fw", "err"))
    assert "seq" not in dict(point.tags)


def test_resent_reading_maps_to_the_same_point_also_after_a_move(registry_path) -> None:
    with Registry(registry_path) as reg:
        reg.add_municipality("kk", "København")
        reg.add_site("s1", "kk", 55.68, 12.57)
        reg.add_bin("bin-a", "s1", "glass", 600)
        reg.add_bin("bin-b", "s1", "paper", 600)
        reg.add_device("dev-s1", at_ms=1_700_000_000_000)
        reg.link("dev-s1", "bin-a", at_ms=1_700_000_000_000)
        r = a_reading(5)
        before = storage.to_line(storage.reading_point(r))
        reg.link("dev-s1", "bin-b", at_ms=r.ts_ms + 1)  # moved after the reading was taken
        resent = p.parse_message(*p.encode_message(r))
        assert storage.to_line(storage.reading_point(resent)) == before
        # The bin is answered from the history at query time, not from the point.
        assert reg.bin_at("dev-s1", r.ts_ms) == "bin-a"
        assert reg.bin_at("dev-s1", r.ts_ms + 1) == "bin-b"


def test_reading_written_twice_is_stored_once_and_reads_back_equal(influxdb) -> None:
    client = influxdb.client()
    rs = [a_reading(s, errors=(1,) if s == 2 else ()) for s in range(5)]
    rs[3] = a_reading(
        3, distance_mm=None, fill_pct=None, errors=(1, 3), flags=int(p.Flag.SENSOR_ERROR)
    )
    lines = [storage.to_line(storage.reading_point(r)) for r in rs]
    client.write_lines(lines, precision=storage.PRECISION)
    client.write_lines(lines[1:4], precision=storage.PRECISION)  # a resend of some of them
    where = f"{storage.DEVICE_TAG} = {storage.device_literal('dev-s1')}"
    series = client.query(f"SELECT * FROM {storage.MEASUREMENT} WHERE {where}")
    (s,) = series
    rows = [dict(zip(s["columns"], v, strict=True)) for v in s["values"]]
    assert len(rows) == len(rs)
    back = [
        storage.reading_from_stored(
            row.pop("device"), row.pop("time"), {k: v for k, v in row.items() if v is not None}
        )
        for row in rows
    ]
    assert back == rs


def test_line_protocol_escapes_what_needs_escaping(influxdb) -> None:
    client = influxdb.client()
    dl = p.DeadLetter(
        reason=p.Reason.BAD_JSON,
        detail='payload: "quoted", back\\slash, comma, equals=, space and\nnewline',
        topic="sb/up/dev x,y=z/reading",
        payload=b"\xff\x00{",
        received_ms=1_764_000_000_123,
        device="dev x,y=z",
    )
    client.write_lines([storage.to_line(storage.deadletter_point(dl))], precision=storage.PRECISION)
    measurement = storage.DEADLETTER_MEASUREMENT
    (s,) = client.query(f"SELECT * FROM {measurement} WHERE digest = '{dl.digest}'")
    row = dict(zip(s["columns"], s["values"][0], strict=True))
    assert row["device"] == p.UNKNOWN_DEVICE  # not a device id: never becomes a tag value
    assert row["detail"] == dl.detail
    assert row["topic"] == dl.topic
    assert row["reason"] == "bad_json"
    assert row["time"] == dl.received_ms


def test_two_readings_with_one_timestamp_are_two_points_and_resends_overwrite(influxdb) -> None:
    """A device without a good clock stamps seq 7 and 8 alike: both stay (issue 11 item 5)."""
    client = influxdb.client()
    same = 1_764_100_000_000
    rs = [a_reading(7, device="dev-s2", ts_ms=same), a_reading(8, device="dev-s2", ts_ms=same,
                                                                distance_mm=10)]
    lines = [storage.to_line(storage.reading_point(r)) for r in rs]
    client.write_lines(lines, precision=storage.PRECISION)
    client.write_lines(lines, precision=storage.PRECISION)  # resent: overwrites itself
    where = f"{storage.DEVICE_TAG} = {storage.device_literal('dev-s2')}"
    (s,) = client.query(f"SELECT seq, mm FROM {storage.MEASUREMENT} WHERE {where}")
    assert [(t, seq, mm) for t, seq, mm in s["values"]] == [(same, 7.0, 893.0), (same, 8.0, 10.0)]
