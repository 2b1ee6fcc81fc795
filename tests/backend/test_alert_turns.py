"""The alert engine's write turns: a waiting urgent writer (a live reading, a delivery) goes
before every waiting backfill writer, so a storm of backfilled batches cannot starve a fire
alert."""

from __future__ import annotations

import threading

from backend.alertengine import WriteTurns


def _waiting(turns: WriteTurns, n: int) -> bool:
    with turns._cond:
        return len(turns._cond._waiters) >= n  # type: ignore[attr-defined]


def test_an_urgent_writer_goes_before_waiting_backfill_writers() -> None:
    turns = WriteTurns()
    order: list[str] = []
    release = threading.Event()

    def holder() -> None:
        with turns.turn(urgent=False):
            order.append("holder")
            release.wait(10)

    def writer(name: str, urgent: bool) -> None:
        with turns.turn(urgent=urgent):
            order.append(name)

    h = threading.Thread(target=holder)
    h.start()
    while not order:
        threading.Event().wait(0.001)
    threads = []
    for i, (name, urgent) in enumerate(
        [("backfill-1", False), ("backfill-2", False), ("live", True)]
    ):
        t = threading.Thread(target=writer, args=(name, urgent))
        t.start()
        threads.append(t)
        while not _waiting(turns, i + 1):  # each is queued before the next comes
            threading.Event().wait(0.001)
    release.set()
    for t in [h, *threads]:
        t.join(10)
    assert order[:2] == ["holder", "live"]
    assert sorted(order[2:]) == ["backfill-1", "backfill-2"]


def test_one_writer_at_a_time() -> None:
    turns = WriteTurns()
    inside = 0
    most = 0
    lock = threading.Lock()

    def writer(urgent: bool) -> None:
        nonlocal inside, most
        for _ in range(200):
            with turns.turn(urgent=urgent):
                with lock:
                    inside += 1
                    most = max(most, inside)
                threading.Event().wait(0)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=writer, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 1 and inside == 0
