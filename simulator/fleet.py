"""Run a fleet: in process (``run_fast``) or through a real broker (``BrokerFleet``).

Both drive the same :class:`~simulator.world.World` in simulated-time order, so the readings
are the same for the same seed. In the fast mode the network is a function call: each wake
that is not in an offline window connects (the session is kept), publishes what is due through
the protocol encoder, the in-process :class:`~simulator.acknowledger.AckStore` decodes and
stores it, and the acknowledgement comes back within the wake, as it usually does in 2 s.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simulator import city as city_mod
from simulator.acknowledger import AckStore
from simulator.collections import Collections
from simulator.truth import Truth
from simulator.world import World, WorldOptions
from smartbins import protocol as p
from smartbins.registry import Registry

Progress = Callable[[float], None]  #: called with the simulated fraction done (0..1)


def build_world(
    bins: int,
    options: WorldOptions,
    truth_path: Path | str,
    registry: Registry | None = None,
    collections: Collections | None = None,
    devices: bool = True,
    **world_kw: object,
) -> World:
    """A seeded city written to ``registry`` (if given; with devices unless ``devices`` is
    False, e.g. when provisioning gives them broker accounts) and its world."""
    city = city_mod.generate(bins, options.seed)
    if registry is not None:
        city_mod.write_registry(city, registry)
        if devices:
            city_mod.add_devices(city, registry, options.start_s * 1000)
    return World(city, options, Truth(truth_path), collections=collections, **world_kw)


@dataclass
class RunStats:
    wakes: int = 0
    readings: int = 0
    messages: int = 0
    offline_wakes: int = 0
    stored: int = 0


def run_fast(
    world: World,
    store: AckStore | None = None,
    until_s: float | None = None,
    progress: Progress | None = None,
    on_day: Callable[[World, int], None] | None = None,
    wire: bool = False,
) -> tuple[RunStats, AckStore]:
    """Simulate to ``until_s`` (default: the world's end) without a broker.

    ``wire=True`` sends every message through the protocol encoder and the AckStore's decoder
    (as the broker mode does); the default skips the JSON round trip, which would otherwise
    take most of the time, and keeps everything else (buffer, batches, acks, resends).

    ``on_day(world, t_s)`` is called at each simulated local midnight (UTC day boundary here):
    a planner in the loop can read the truth and ``world.collections.add(...)`` visits.
    """
    end = world.end_s if until_s is None else until_s
    store = store or AckStore(clock_ms=lambda: int(world.field.t_s * 1000))
    stats = RunStats()
    heap = [(world.first_wake(i), i) for i in range(len(world.devices))]
    heapq.heapify(heap)
    start = world.opt.start_s
    next_day = (start // 86400 + 1) * 86400
    last_progress = -1.0
    while heap and heap[0][0] < end:
        t, i = heapq.heappop(heap)
        while on_day is not None and next_day <= t:
            world.advance(next_day)
            on_day(world, next_day)
            next_day += 86400
        world.advance(t)
        _, nxt = world.wake(i, t)
        stats.wakes += 1
        stats.readings += 1
        heapq.heappush(heap, (nxt, i))
        if world.offline(i, t):
            stats.offline_wakes += 1
        else:
            stats.messages += exchange(world, i, t, store, wire)
        if progress is not None:
            frac = (t - start) / max(1.0, end - start)
            if frac - last_progress >= 0.01:
                progress(frac)
                last_progress = frac
    world.advance(end)
    world.truth.flush()
    stats.stored = store.count()
    if progress is not None:
        progress(1.0)
    return stats, store


def exchange(world: World, i: int, t_s: int, store: AckStore, wire: bool = True) -> int:
    """One connected wake in process: connect, publish what is due, take the acks, status."""
    dev = world.devices[i]
    t_ms = t_s * 1000
    dev.on_connect(t_ms, session_present=dev.session)
    if not wire:
        due = dev.due(t_ms)[: p.DEVICE_BATCH_READINGS * 10]
        if not due:
            return 0
        seqs = tuple(e.seq for e in due)
        for e in due:
            e.sent_ms = t_ms
            e.sends += 1
        store.store_seqs(dev.id, seqs)
        dev.acknowledged(p.ranges_from_seqs(seqs))
        dev.online_sent = True
        return (len(seqs) + p.DEVICE_BATCH_READINGS - 1) // p.DEVICE_BATCH_READINGS
    sent = 0
    for out in dev.outgoing(t_ms):
        sent += 1
        ack = store.handle(out.topic, out.payload)
        if ack is not None:
            dev.on_message(p.parse_message(*ack))
    status = dev.status_online(t_ms, None, world.rssi[i])
    if status is not None:
        store.handle(*status)
    return sent


def buffered(world: World) -> dict[str, set[int]]:
    """What each device still holds in its buffer (for the truth's accounting)."""
    return {d.id: {e.seq for e in d.flash.buffer} for d in world.devices}
