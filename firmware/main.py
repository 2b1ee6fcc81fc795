# smartbins firmware: the wake cycle (measure, buffer, connect, backfill, sleep)
# Apache-2.0; part of smartbins. Follows docs/protocol.md "Device behaviour" step by step.

import json
import sys

import encode
import measure
from log import log_error, log_info, log_warn
from micropython import const
from mqtt import MQTTClient, MQTTError
from ringbuf import SLOT_SIZE, RingBuffer

FW_VERSION = "1.0.0"
WIFI_BUDGET_MS = const(8000)  # docs/protocol.md step 3: never wait longer for Wi-Fi
NTP_BUDGET_MS = const(1000)
CONNECT_BUDGET_MS = const(5000)  # TCP connect + CONNACK
PUBACK_MS = const(5000)  # per PUBLISH
SYNC_MS = const(2000)  # queued acknowledgements and the retained config after connecting
ACK_WAIT_MS = const(2000)  # end-to-end acknowledgement of what was just sent
SESSION_BUDGET_MS = const(20000)  # no new publish starts after this much of the MQTT phase
MAX_BATCHES = const(10)
RESEND_MIN_S = const(60)
CLOCK_AHEAD_MS = const(60000)  # last ts this far past a current server time: the clock was wrong

#: Config defaults until the retained config (docs/protocol.md "Config") has been received.
DEFAULTS = {
    "cal": 0,
    "empty_mm": 1000,
    "full_mm": 200,
    "interval": 3600,
    "interval_near_full": 900,
    "interval_low_battery": 14400,
    "near_full": 80.0,
    "low_battery": 3300,
    "fire_temp": 70.0,
    "fire_rise": 20.0,
    "tilt": 45.0,
}


def load_settings(path: str) -> dict:
    """The device's config.json (written by `smartbins provision`): identity, secrets, broker,
    Wi-Fi, first calibration. Raises OSError/ValueError when missing or unreadable."""
    with open(path) as f:
        s = json.load(f)
    for key in ("device", "password", "broker"):
        if key not in s:
            raise ValueError("config.json: " + key + " is missing")
    sensor = s.setdefault("sensor", measure.ULTRASONIC)
    if sensor not in measure.SENSORS:
        raise ValueError("config.json: sensor %r is not one of %s" % (sensor, measure.SENSORS))
    return s


class Wake:
    """One wake of the device: everything it knows comes from flash, RTC memory and config."""

    def __init__(self, hw, settings: dict) -> None:
        self.hw = hw
        self.s = settings
        self.dev = settings["device"]
        hw.select_sensor(settings["sensor"])
        slots = settings.get("slots", 512)
        self.rb = RingBuffer(
            hw.flash(hw.path("buffer.bin"), slots * SLOT_SIZE), slots, hw.path("state.json")
        )
        self.st = self.rb.state
        self.mem = hw.rtcmem_load()
        if not hw.woke_from_sleep():
            # Counted and saved before anything else, so that a power cut later in this wake
            # cannot hand the same boot number to the next start.
            self.st["boot"] = self.st.get("boot", 0) + 1
            self.rb.save_state()
            self.mem = {}
        self.boot = self.st["boot"]
        cfg = dict(DEFAULTS)
        cfg.update(settings.get("calibration", {}))
        cfg.update(settings.get("config", {}))  # thresholds as provisioned
        cfg.update(self.st.get("cfg", {}))
        self.cfg = cfg
        self.published = False  # an ack's server_ts is current only after this wake published
        self.fire_seq: int | None = None  # a fire alarm goes first, before any backlog
        self.quota = MAX_BATCHES * encode.BATCH_READINGS  # readings this wake may still send
        self.steps: dict = {}  # how long each step took [ms]: docs/firmware.md energy budget
        self._t = hw.ticks_ms()
        self.rssi = None

    def step(self, name: str) -> None:
        now = self.hw.ticks_ms()
        self.steps[name] = self.hw.ticks_diff(now, self._t)
        self._t = now

    # ---------------------------------------------------------------- clock

    def utc(self):
        off = self.mem.get("off")
        return None if off is None else self.hw.rtc_ms() + off

    def learn(self, server_ts: int, current: bool) -> None:
        """Set the clock from a current server time, or raise it to a lower bound."""
        rtc = self.hw.rtc_ms()
        off = self.mem.get("off")
        if current or (off is not None and rtc + off < server_ts):
            self.mem["off"] = server_ts - rtc
        if current and self.st.get("last_ts", 0) > server_ts + CLOCK_AHEAD_MS:
            # The clock was far ahead (a bad NTP answer): later readings take the server's time
            # instead of one past a timestamp the gateway refused as being in the future.
            self.st["last_ts"] = server_ts

    def next_ts(self, t: int) -> int:
        """Timestamps strictly increase per device: max(clock, previous + 1 ms)."""
        ts = max(t, self.st.get("last_ts", 0) + 1)
        self.st["last_ts"] = ts
        return ts

    def convert_estimated(self) -> int:
        """Give readings taken before the clock was known their UTC time, once, and keep it in
        the buffer's state so a resend carries the same timestamp."""
        now = self.utc()
        if now is None or not self.st.get("est"):
            return 0
        rtc_now = self.hw.rtc_ms()
        groups: dict = {}  # boot -> [(seq, rec)]
        for seq in self.rb.pending():
            rec = self.rb.read(seq)
            if rec.get("ts") is None:
                groups.setdefault(rec["boot"], []).append((seq, rec))
        if not groups:
            self.st["est"] = False
            return 0
        est: dict = {}
        anchor = now
        for boot in sorted(groups, reverse=True):
            items = groups[boot]
            if boot == self.boot:
                for seq, rec in items:
                    est[seq] = now - (rtc_now - rec["rtc"])
            else:
                # An earlier boot never learned the time: one interval apart, ending one
                # interval before the first reading of the boot that followed.
                n = len(items)
                for i, (seq, rec) in enumerate(items):
                    est[seq] = anchor - (n - i) * rec["interval"] * 1000
            anchor = min(est[s] for s, _ in items)
        for seq in sorted(est):
            self.rb.set_ts(seq, self.next_ts(est[seq]))
        self.st["est"] = False
        self.rb.save_state()
        log_info("converted", len(est), "readings to UTC")
        return len(est)

    # ---------------------------------------------------------------- the cycle

    def run(self) -> int:
        """One wake; returns the sleep time [ms] until the next."""
        hw = self.hw
        cfg = self.cfg
        # Readings still without a time get it before this one does, or their timestamps
        # would come after it (a wake that learned the clock may have ended before converting).
        self.convert_estimated()
        m = measure.measure(hw, cfg, self.mem.get("last_temp"))
        self.step("measure")
        interval = measure.choose_interval(cfg, m)
        rec = {
            "boot": self.boot,
            "interval": interval,
            "cal": cfg.get("cal", 0),
            "fw": FW_VERSION,
            "rssi": self.mem.get("rssi"),
            "rtc": hw.rtc_ms(),
        }
        rec.update(m)
        now = self.utc()
        if now is None:
            rec["flags"] |= measure.TIME_ESTIMATED
            self.st["est"] = True  # saved with the reading below, before any send
        else:
            rec["ts"] = self.next_ts(now)
        # Step 2: into flash before any send is tried.
        seq = self.rb.append(rec)
        self.fire_seq = seq if rec["flags"] & measure.FIRE else None
        self.mem["last_temp"] = m["temp"]
        self.rb.save_state()
        self.step("store")
        hw.rtcmem_save(self.mem)
        log_info("reading", seq, "flags", rec["flags"])
        self.mem["net"] = "started"
        try:
            self.network()
        except MQTTError as e:
            self.mem["net"] = "mqtt %d" % e.code
            log_warn("network:", e)
        except OSError as e:
            self.mem["net"] = "os " + str(e)
            log_warn("network:", e)
        self.rb.save_state()
        self.step("close")
        self.mem["steps"] = self.steps
        hw.rtcmem_save(self.mem)
        # A config received this wake applies from this wake on: the sleep follows it.
        new = self.st.get("cfg")
        if new:
            cfg = dict(cfg)
            cfg.update(new)
            interval = measure.choose_interval(cfg, m)
        return interval * 1000

    def network(self) -> None:
        hw = self.hw
        wifi = self.s.get("wifi", {})
        rssi = hw.wifi_connect(wifi.get("ssid"), wifi.get("password"), WIFI_BUDGET_MS)
        self.step("wifi")
        if rssi is None:
            self.mem["net"] = "no wifi"
            log_warn("no Wi-Fi within", WIFI_BUDGET_MS, "ms; sleeping")
            return
        self.mem["rssi"] = rssi
        self.rssi = rssi
        if self.mem.get("off") is None:
            t = hw.ntp_ms(self.s.get("ntp"), NTP_BUDGET_MS)
            if t is not None:
                self.mem["off"] = t - hw.rtc_ms()
                self.convert_estimated()  # at once: before any later reading takes a time
            self.step("ntp")
        b = self.s["broker"]
        c = MQTTClient(hw, self.dev, b["host"], b["port"], self.dev, self.s["password"], 60)
        c.on_message = self.on_message
        t0 = hw.ticks_ms()
        try:
            present = c.connect(False, CONNECT_BUDGET_MS, encode.will(self.dev))
            self.step("connect")
            # Until the DISCONNECT below, a lost session makes the broker publish the will
            # ("lost", retained); the next session then says "online" again, even in this boot.
            unclean = self.mem.get("unclean")
            self.mem["unclean"] = True
            if not present and not c.subscribe(
                (encode.topic("config", self.dev), encode.topic("ack", self.dev)), SYNC_MS
            ):
                raise MQTTError("no SUBACK", -1)
            c.sync(SYNC_MS)
            self.step("sync")
            self.convert_estimated()
            announce = self.mem.get("online") != self.boot or unclean
            if announce and self.utc() is None:
                # No clock and perhaps nothing to be acknowledged: the gateway answers an
                # online status with the current server time (docs/protocol.md, Time).
                self.publish_status(c, rssi)
                announce = False
                c.wait(lambda: self.utc() is not None, ACK_WAIT_MS)
                self.convert_estimated()
            # A second pass only when the first one's acknowledgement taught the clock and so
            # made readings taken without it sendable; both passes share the per-wake cap.
            if self.publish_due(c, t0) and self.convert_estimated():
                self.publish_due(c, t0)
            self.step("publish")
            if announce:
                self.publish_status(c, rssi)
            c.disconnect()
            self.mem["unclean"] = False
            self.mem["net"] = "ok"
        finally:
            c.close()
            hw.wifi_off()

    def publish_status(self, c, rssi) -> None:
        """``online`` with the device's details; an acknowledgement after it is current."""
        hw = self.hw
        st = {
            "state": "online",
            "ts": self.utc(),
            "boot": self.boot,
            "fw": FW_VERSION,
            "bat": hw.battery_mv(),
            "rssi": rssi,
            "dropped": self.st.get("dropped", 0),
            "buffered": len(self.rb.live),
        }
        topic, payload = encode.status(self.dev, st)
        self.published = True
        if c.publish(topic, payload, PUBACK_MS, retain=True):
            self.mem["online"] = self.boot

    def publish_due(self, c, t0: int) -> bool:
        """Publish what is due, oldest first; wait briefly for its acknowledgement. Returns
        True if anything was published."""
        hw = self.hw
        rb = self.rb
        resend_ms = max(RESEND_MIN_S, int(self.cfg["interval"]) // 2) * 1000
        recs: list = []
        sent: list = []
        due = rb.due(self.boot, hw.rtc_ms(), resend_ms)
        fire = self.fire_seq
        if fire is not None and fire in due:
            due.remove(fire)
            rec = rb.read(fire)
            self.fire_seq = None
            if rec.get("ts") is not None:
                self.published = True
                topic, payload = encode.reading(self.dev, rec)
                if not c.publish(topic, payload, PUBACK_MS):
                    raise MQTTError("no PUBACK within %d ms" % PUBACK_MS, -1)
                rb.mark_sent([rec["seq"]], self.boot, hw.rtc_ms())
                sent.append(rec["seq"])
        for seq in due:
            if len(recs) >= self.quota:
                break
            rec = rb.read(seq)
            if rec.get("ts") is not None:  # still without a clock: kept until it has one
                recs.append(rec)
        self.quota -= len(recs)
        if len(recs) == 1:
            msgs = [(recs, encode.reading(self.dev, recs[0]))]
        else:
            n = encode.BATCH_READINGS
            msgs = [
                (recs[i : i + n], encode.batch(self.dev, recs[i : i + n]))
                for i in range(0, len(recs), n)
            ]
        for group, (topic, payload) in msgs:
            if hw.ticks_diff(hw.ticks_ms(), t0) > SESSION_BUDGET_MS:
                log_warn("session budget spent; the rest goes at the next wake")
                break
            self.published = True
            if not c.publish(topic, payload, PUBACK_MS):
                raise MQTTError("no PUBACK within %d ms" % PUBACK_MS, -1)
            seqs = [r["seq"] for r in group]
            rb.mark_sent(seqs, self.boot, hw.rtc_ms())
            sent.extend(seqs)
        if not sent:
            return False
        rb.save_state()
        live = rb.live
        c.wait(lambda: not any(s in live for s in sent), ACK_WAIT_MS)
        return bool(sent)

    def on_message(self, topic: str, payload: bytes) -> None:
        try:
            kind, f = encode.decode(self.dev, topic, payload)
        except ValueError as e:
            log_warn("ignored message:", e)
            return
        if kind == "ack":
            self.rb.handle(f["stored"])
            self.rb.handle(f["rejected"])
            self.learn(f["server_ts"], self.published)
        else:
            self.learn(f["server_ts"], False)
            applied = dict(f)
            del applied["server_ts"]
            self.st["cfg"] = applied  # used from the next reading on


def start(hw) -> None:
    """Run one wake and go to sleep, whatever happens: a bug must not keep the node awake."""
    sleep_ms = DEFAULTS["interval"] * 1000
    try:
        settings = load_settings(hw.path("config.json"))
        sleep_ms = Wake(hw, settings).run()
    except Exception as e:
        log_error("wake failed:", repr(e))
        sys.print_exception(e)
        hw.record_error(e)
    hw.deep_sleep(sleep_ms)


def _main() -> None:
    if sys.platform == "linux":
        from hw_fake import FakeHardware
        from ringbuf import PowerCut

        hw = FakeHardware(sys.argv[1:])
        try:
            while hw.wakes_left():
                start(hw)
        except PowerCut as e:
            log_error("power cut:", e)
            sys.exit(3)
    else:
        from hw_esp32 import Hardware

        start(Hardware())


if __name__ == "__main__":
    _main()
