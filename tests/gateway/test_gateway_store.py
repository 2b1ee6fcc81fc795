"""Store errors sorted into retry or split; backoff schedule with an injected clock and sleep."""

from __future__ import annotations

import shutil

import pytest

from gateway.config import RetryConfig
from gateway.metrics import Metrics
from gateway.store import Backoff, Stopped, Store, classify
from smartbins.influx import InfluxClient, InfluxError
from smartbins.servers import InfluxDB, temp_workdir


def test_backoff_is_capped_exponential_with_seeded_jitter() -> None:
    cfg = RetryConfig(initial_s=0.1, max_s=2.0, multiplier=2.0, jitter=0.2, seed=7)
    b = Backoff(cfg)
    delays = [b.next_delay() for _ in range(8)]
    bases = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    for d, base in zip(delays, bases, strict=True):
        assert base * 0.8 - 1e-9 <= d <= min(2.0, base * 1.2) + 1e-9
    again = Backoff(cfg)
    assert [again.next_delay() for _ in range(8)] == delays  # seeded: the same schedule
    b.reset()
    assert 0.08 <= b.next_delay() <= 0.12  # back to the initial delay
    assert Backoff(RetryConfig(jitter=0.0)).next_delay() == 0.1


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "split"), (413, "split"), (None, "retry"), (500, "retry"), (503, "retry"),
     (429, "retry"), (408, "retry"), (401, "retry"), (403, "retry"), (404, "retry")],
)  # fmt: skip
def test_classify(status: int | None, kind: str) -> None:
    assert classify(InfluxError("x", status=status, retryable=False)) == kind


def test_write_retries_until_influxdb_is_back_without_real_waiting() -> None:
    """influxd down: the store sleeps the backoff schedule (injected) and writes once it is up."""
    workdir = temp_workdir("gw-store")
    influx = InfluxDB(workdir)
    try:
        influx.start()
        influx.stop()
        slept: list[float] = []

        def sleep(s: float) -> None:
            slept.append(s)
            if len(slept) == 4:
                influx.start()

        metrics = Metrics()
        store = Store(
            influx.client(), RetryConfig(initial_s=1, max_s=4, jitter=0), metrics, sleep=sleep
        )
        rejected = store.write(["reading,device=a seq=1.0 1764000000000"])
        assert rejected == {}
        assert slept == [1, 2, 4, 4]
        assert metrics.get("gateway_write_retries_total") == 4 and store.healthy
        assert influx.client().query("SELECT count(seq) FROM reading")[0]["values"][0][1] == 1
    finally:
        influx.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_stopping_gateway_abandons_a_retrying_write() -> None:
    client = InfluxClient("http://127.0.0.1:9", "db", timeout=0.5)  # discard port: refused
    store = Store(client, RetryConfig(), Metrics())
    store.sleep = lambda s: store.stop.set()
    with pytest.raises(Stopped):
        store.write(["reading,device=a seq=1.0 1"])
    assert not store.healthy and "9" in store.last_error


def test_split_isolates_every_bad_point(influxdb: InfluxDB) -> None:
    db = "gw_split"
    influxdb.client().execute(f'CREATE DATABASE "{db}"')
    try:
        client = influxdb.client(db)
        client.write_lines(['m,device=x f="s" 1600000000000'])  # f is a string in this shard
        # The store writes nanoseconds (smartbins.storage.PRECISION).
        lines = [f"m,device=a f={i}.0 {(1764000000000 + i) * 10**6}" for i in range(10)]
        lines[3] = f"m,device=a f=1.0 {1600000000001 * 10**6}"  # conflicts
        lines[8] = f"m,device=a f=2.0 {1600000000002 * 10**6}"  # conflicts
        metrics = Metrics()
        rejected = Store(client, RetryConfig(), metrics).write(lines)
        assert sorted(rejected) == [3, 8]
        assert "field type conflict" in rejected[3]
        count = client.query("SELECT count(f) FROM m WHERE device = 'a'")[0]["values"][0][1]
        assert count == 8
    finally:
        influxdb.client().execute(f'DROP DATABASE "{db}"')
