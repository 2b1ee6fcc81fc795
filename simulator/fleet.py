"""Run a fleet: in process (``run_fast``) or through a real broker (``BrokerFleet``).

Both drive the same :class:`~simulator.world.World` in simulated-time order, so the readings
are the same for the same seed. In the fast mode the network is a function call: each wake
that is not in an offline window connects (the session is kept), publishes what is due through
the protocol encoder, the in-process :class:`~simulator.acknowledger.AckStore` decodes and
stores it, and the acknowledgement comes back within the wake, as it usually does in 2 s.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simulator import city as city_mod
from simulator.acknowledger import AckStore
from simulator.collections import Collections
from simulator.device import VirtualDevice
from simulator.mqtt_client import Connection, Message, MqttError, connect, connect_packet
from simulator.truth import Truth
from simulator.world import World, WorldOptions
from smartbins import protocol as p
from smartbins.passwords import PasswordFile
from smartbins.provisioning import ProvisionRequest, provision
from smartbins.registry import Registry

Progress = Callable[[float], None]  #: called with the simulated fraction done (0..1)


def build_world(
    bins: int,
    options: WorldOptions,
    truth_path: Path | str,
    registry: Registry | None = None,
    collections: Collections | None = None,
    devices: bool = True,
    device_prefix: str = "kbh",
    **world_kw: object,
) -> World:
    """A seeded city written to ``registry`` (if given; with devices unless ``devices`` is
    False, e.g. when provisioning gives them broker accounts) and its world."""
    city = city_mod.generate(bins, options.seed, device_prefix)
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
        dev.online_published()
    return sent


def buffered(world: World) -> dict[str, set[int]]:
    """What each device still holds in its buffer (for the truth's accounting)."""
    return {d.id: {e.seq for e in d.flash.buffer} for d in world.devices}


def fill_buffers(world: World, per_device: int) -> int:
    """Wake every device without a network until it holds ``per_device`` readings: the fleet
    after a long outage of the broker, ready for a backfill storm (``BrokerFleet.start_storm``).
    Each device connected once before the outage, so it knows the time. Returns the simulated
    time [s] of the last wake."""
    start_ms = world.opt.start_s * 1000
    for d in world.devices:
        d.on_connect(start_ms, session_present=False)
    heap = [(world.first_wake(i), i) for i in range(len(world.devices))]
    heapq.heapify(heap)
    last = world.opt.start_s
    while heap:
        t, i = heapq.heappop(heap)
        world.advance(t)
        _, nxt = world.wake(i, t)
        last = t
        if len(world.devices[i].flash.buffer) < per_device:
            heapq.heappush(heap, (nxt, i))
    world.truth.flush()
    return last


# ---------------------------------------------------------------------------- broker mode


def provision_fleet(world: World, registry: Registry, passwords: PasswordFile) -> dict[str, str]:
    """Give every device of the world its own broker account and registry row, in one
    transaction and one password-file rewrite (smartbins.provisioning). Returns id -> password."""
    requests = [ProvisionRequest(d.id, world.bin_ids[i]) for i, d in enumerate(world.devices)]
    creds = provision(registry, passwords, requests, at_ms=world.opt.start_s * 1000)
    return {c.username: c.password for c in creds}


@dataclass
class BrokerStats:
    wakes: int = 0
    connects: int = 0
    connect_failures: int = 0
    wake_errors: int = 0
    offline_wakes: int = 0
    busy_skips: int = 0  #: wakes whose previous network exchange was still running
    messages: int = 0
    readings_sent: int = 0
    acks: int = 0
    bad_messages: int = 0
    lag_s: float = 0.0  #: how far the scheduler ran behind the simulated clock, at most
    errors: dict[str, int] = field(default_factory=dict)  #: failure message -> count

    def error(self, e: BaseException) -> None:
        key = str(e)[:80] or type(e).__name__
        self.errors[key] = self.errors.get(key, 0) + 1


class BrokerFleet:
    """Every device of a world, waking in accelerated simulated time, each wake a real MQTT
    connection to the broker on ``port`` with the device's own credentials.

    Runs its own asyncio loop in a thread: ``start()``, then drive it from a test with
    ``pause``/``resume``/``kill`` and read ``world`` (ground truth) and ``stats``; ``stop()``.
    The simulated clock is ``start_s + (real - real_start) * speed``: choose ``start_s`` far
    enough in the past (cli.start_for) that it never passes real time.

    The protocol's real-time waits (PUBACK 5 s, acknowledgement 2 s) are kept as timeouts, but
    the acknowledgement wait is shortened to a quarter of the accelerated interval, so a wake
    never overlaps the device's next one.
    """

    def __init__(
        self,
        world: World,
        port: int,
        passwords: dict[str, str],
        speed: float,
        *,
        ack_wait_s: float | None = None,
        connect_timeout_s: float = 5.0,
        max_active: int = 5000,
        max_connecting: int = 64,
        clock: Callable[[], float] = time.monotonic,
        only: Sequence[int] | None = None,
    ) -> None:
        self.world = world
        self.port = port
        self.passwords = passwords
        self.speed = speed
        interval = world.opt.defaults.interval_s
        self.ack_wait_s = ack_wait_s if ack_wait_s is not None else min(
            2.0, interval / speed / 4)
        self.connect_timeout_s = connect_timeout_s
        self.max_active = max_active
        #: connects waiting for their CONNACK at most at once: Mosquitto listens with a
        #: backlog of 100, and a burst beyond it (a fleet catching up after a stall) has its
        #: SYNs dropped and retried 1 s and 3 s later, which showed as "no CONNACK within 5 s"
        self.max_connecting = max_connecting
        self._connect_gate: asyncio.Semaphore | None = None
        self.clock = clock
        self.stats = BrokerStats()
        self.paused: set[int] = set()
        self.active: dict[int, asyncio.Task[None]] = {}
        self.conns: dict[int, Connection] = {}
        self._connect_packets: dict[int, bytes] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._stopping = False
        self._real0 = 0.0
        self.until_s = world.end_s
        self.progress: Progress | None = None
        self.drain_s = 0.0
        self.drained: bool | None = None  #: after a drain: whether every buffer emptied
        self._sim0 = float(world.opt.start_s)  #: simulated time at the real start
        self._storm = False
        #: the device indices this fleet runs (all by default); shards of one world can run in
        #: several processes, each with the same seed, to use more than one core
        self.only = list(range(len(world.devices))) if only is None else list(only)

    # ------------------------------------------------------------------ clock and control

    def sim_now(self) -> float:
        return self._sim0 + (self.clock() - self._real0) * self.speed

    def _index(self, device_id: str) -> int:
        return self.world.city.device_ids.index(device_id)

    def pause(self, device_id: str) -> None:
        """The device loses its network (wakes still measure and buffer) until ``resume``."""
        self._call(self.paused.add, self._index(device_id))

    def resume(self, device_id: str) -> None:
        self._call(self.paused.discard, self._index(device_id))

    def kill(self, device_id: str) -> None:
        """Power cut now: a connection in progress drops without DISCONNECT (the will fires),
        and the device reboots (boot + 1, clock lost until its next connect)."""
        i = self._index(device_id)

        def do() -> None:
            conn = self.conns.get(i)
            if conn is not None:
                conn.abort()
            task = self.active.get(i)
            if task is not None:
                task.cancel()  # the wake dies with the power
            self.world.devices[i].reboot(int(self.sim_now() * 1000))

        self._call(do)

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        if self.loop is not None and self.thread is not None and self.thread.is_alive():
            done = threading.Event()

            def run() -> None:
                try:
                    fn(*args)
                finally:
                    done.set()

            self.loop.call_soon_threadsafe(run)
            done.wait(5)
        else:
            fn(*args)

    # ------------------------------------------------------------------ running

    def start(self, until_s: float | None = None, progress: Progress | None = None,
              drain_s: float = 0.0) -> BrokerFleet:
        """Run in a thread to ``until_s``, then drain (``_drain``) for up to ``drain_s`` s."""
        self.until_s = self.world.end_s if until_s is None else until_s
        self.progress = progress
        self.drain_s = drain_s
        self.thread = threading.Thread(target=self._thread, name="broker-fleet", daemon=True)
        self.thread.start()
        return self

    def start_storm(self, from_s: float, concurrency: int = 200) -> BrokerFleet:
        """A backfill storm: with the simulated clock at ``from_s`` (after ``fill_buffers``),
        every device holding readings wakes at once and sends its backlog, oldest first, in
        batches, waiting for the end-to-end acknowledgement as long as a device does
        (``ack_wait_s``). One wake each; ``wait()`` tells when all are done, ``holding()``
        what stays unacknowledged.

        ``concurrency`` bounds the wakes in progress: this process encodes every device's
        backlog, and with thousands of wakes at once its event loop read CONNACKs too late
        (5 s timeouts). The devices queue here, not at the broker."""
        self._sim0 = from_s
        self._storm = True
        self.max_active = concurrency
        self.thread = threading.Thread(target=self._thread, name="broker-fleet", daemon=True)
        self.thread.start()
        return self

    def run(self, until_s: float | None = None, progress: Progress | None = None) -> BrokerStats:
        """Run to the end in the calling thread."""
        self.until_s = self.world.end_s if until_s is None else until_s
        self.progress = progress
        self._thread()
        if self.error is not None:
            raise self.error
        return self.stats

    def stop(self, timeout: float = 30.0) -> BrokerStats:
        self._stopping = True
        if self.thread is not None:
            self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.stats

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)

    def _thread(self) -> None:
        self.loop = asyncio.new_event_loop()
        # The world (devices, traits, schedules: ~4 KiB per device) lives for the whole run:
        # keep the cyclic collector from walking it again at every full collection, which
        # cost about 50 us per wake with 5,000 devices. unfreeze() hands it back afterwards.
        gc.freeze()
        try:
            if self._storm:
                self._real0 = self.clock()
                self.loop.run_until_complete(self._storm_wakes())
                return
            self.loop.run_until_complete(self._main())
            if self.drain_s > 0 and not self._stopping:
                self.loop.run_until_complete(self._drain(self.drain_s))
        except BaseException as e:  # reported to the caller by stop()/run()
            self.error = e
        finally:
            gc.unfreeze()
            self.loop.close()
            self.done.set()

    async def _main(self) -> None:
        w = self.world
        self._connect_gate = asyncio.Semaphore(self.max_connecting)
        self._real0 = self.clock()
        heap = [(w.first_wake(i), i) for i in self.only]
        heapq.heapify(heap)
        start, end = w.opt.start_s, self.until_s
        while not self._stopping and heap and heap[0][0] < end:
            t, i = heap[0]
            now = self.sim_now()
            if t > now:
                await asyncio.sleep(min((t - now) / self.speed, 0.05))
                continue
            self.stats.lag_s = max(self.stats.lag_s, (now - t) / self.speed)
            heapq.heappop(heap)
            w.advance(t)
            _, nxt = w.wake(i, t)
            heapq.heappush(heap, (nxt, i))
            self.stats.wakes += 1
            if self.stats.wakes % 256 == 0:
                await asyncio.sleep(0)  # let network tasks run under load
                if self.progress is not None:
                    self.progress((t - start) / max(1.0, end - start))
            if i in self.paused or w.offline(i, t):
                self.stats.offline_wakes += 1
            elif i in self.active or len(self.active) >= self.max_active:
                self.stats.busy_skips += 1
            else:
                self._spawn_wake(i)
        if self.active:
            await asyncio.gather(*list(self.active.values()), return_exceptions=True)
        if not self._stopping:
            w.advance(end)
        w.truth.flush()
        if self.progress is not None:
            self.progress(1.0)

    def holding(self) -> int:
        """Readings still in the buffers of this fleet's devices (not acknowledged end to end)."""
        return sum(len(self.world.devices[i].flash.buffer) for i in self.only)

    def _spawn_wake(self, i: int) -> None:
        """Device ``i``'s network exchange as a task, held in ``active`` while it runs."""
        task = asyncio.get_running_loop().create_task(self._network_wake(i))
        self.active[i] = task
        task.add_done_callback(lambda _t: self.active.pop(i, None))

    async def _storm_wakes(self) -> None:
        self._connect_gate = asyncio.Semaphore(self.max_connecting)
        for i in self.only:
            if self._stopping:
                break
            if not self.world.devices[i].flash.buffer or i in self.paused:
                continue
            while len(self.active) >= self.max_active:
                await asyncio.sleep(0.01)
            self._spawn_wake(i)
            self.stats.wakes += 1
            if self.stats.wakes % 256 == 0:
                await asyncio.sleep(0)
        if self.active:
            await asyncio.gather(*list(self.active.values()), return_exceptions=True)
        self.drained = self.holding() == 0

    async def _drain(self, timeout_s: float) -> None:
        """After the run: every device still holding readings keeps waking once per interval
        (accelerated), network only, with no new measurement, until every buffer is empty or
        ``timeout_s`` real seconds pass. This is what the field does after an outage (devices
        resend what was never acknowledged end to end); it lets a test compare the store with
        the truth without readings left in flight. Sets ``drained``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        period = self.world.opt.defaults.interval_s / self.speed
        while not self._stopping and loop.time() < deadline:
            holding = [
                i for i in self.only
                if self.world.devices[i].flash.buffer and i not in self.paused
            ]
            if not holding and not self.active:
                break
            for i in holding:
                if i not in self.active and len(self.active) < self.max_active:
                    self._spawn_wake(i)
            await asyncio.sleep(min(period, max(0.0, deadline - loop.time())))
        if self.active:
            await asyncio.gather(*list(self.active.values()), return_exceptions=True)
        self.drained = self.holding() == 0
        self.world.truth.flush()

    async def _network_wake(self, i: int) -> None:
        dev = self.world.devices[i]
        packet = self._connect_packets.get(i)
        if packet is None:  # a device's CONNECT never changes: build it once
            packet = self._connect_packets[i] = connect_packet(
                dev.id, dev.id, self.passwords[dev.id], dev.will(), clean=False, keepalive=60)
        try:
            assert self._connect_gate is not None
            async with self._connect_gate:
                conn = await connect(self.port, dev.id, timeout=self.connect_timeout_s,
                                     packet=packet)
        except MqttError as e:
            self.stats.connect_failures += 1
            self.stats.error(e)
            return
        self.stats.connects += 1
        self.conns[i] = conn
        try:
            subscribe = dev.on_connect(int(self.sim_now() * 1000), conn.session_present)
            if subscribe:
                await conn.subscribe(subscribe)
            self._take_in(dev, conn)
            pending: set[int] = set()
            for out in dev.outgoing(int(self.sim_now() * 1000)):
                await conn.publish(out.topic, out.payload)
                self.stats.messages += 1
                self.stats.readings_sent += len(out.seqs)
                pending.update(out.seqs)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.ack_wait_s
            while pending and pending & {e.seq for e in dev.flash.buffer}:
                msg = await conn.next_message(deadline - loop.time())
                if msg is None:
                    break
                self._handle(dev, msg)
            self._take_in(dev, conn)
            status = dev.status_online(int(self.sim_now() * 1000), None, self.world.rssi[i])
            if status is not None:
                await conn.publish(*status, retain=True)
                dev.online_published()
            await conn.disconnect()
        except (MqttError, asyncio.CancelledError) as e:
            self.stats.wake_errors += 1
            self.stats.error(e)
            conn.abort()
        finally:
            self.conns.pop(i, None)

    def _take_in(self, dev: VirtualDevice, conn: Connection) -> None:
        messages = conn.messages
        while messages:
            self._handle(dev, messages.popleft())

    def _handle(self, dev: VirtualDevice, msg: Message) -> None:
        try:
            decoded = p.parse_message(msg.topic, msg.payload)
        except p.PayloadError:
            self.stats.bad_messages += 1
            return
        if isinstance(decoded, p.Ack):
            self.stats.acks += 1
        dev.on_message(decoded)
