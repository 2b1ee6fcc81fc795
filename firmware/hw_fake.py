# smartbins firmware: fake hardware for the Unix port, driven by a scenario file
# Apache-2.0; part of smartbins. Usage: micropython main.py WORLD_DIR [WAKES]

import json
import math
import os
import sys
import time

import measure
import vl53l1x
from ringbuf import FileFlash, PowerCut

# A world directory holds the device's files (config.json, buffer.bin, state.json) and:
#   scenario.json  what the sensors see and what the network does (read at every wake)
#   world.json     the true UTC time, the RTC counter, RTC memory, asleep or not
#   wakes.jsonl    one line per wake: awake time on the injected clock, sleep time, errors
# A process killed mid-wake (SIGKILL) leaves world.json "awake": the next start is a power-on,
# which clears the RTC counter and RTC memory as a power cut does on the ESP32.
SCENARIO_DEFAULTS: dict = {
    "utc_ms": 1764000000000,  # true time at the first power-on
    "distance_mm": 800.0,  # true one-way distance from sensor to the surface
    "temp_c": 10.0,  # true air temperature
    "temp_fail": False,
    "tilt_deg": 2.0,
    "accel_fail": False,
    "bat_mv": 3900,
    "pings": ["ok"],  # per-ping pattern, cycled: ok | spike | timeout | bad_status (ToF only)
    "tof_absent": False,  # the VL53L1X does not answer on I2C
    "tof_boots": True,  # False: its firmware never reports booted
    "tof_ready": True,  # False: no measurement ever becomes ready, not even the first
    "tof_model_id": 0xEACC,  # another value: not a VL53L1X
    "wifi": True,
    "wifi_ms": 1200,  # time Wi-Fi takes to associate and get an address
    "ntp": True,
    "power_off_ms": 600000,  # time without power at a power cut
    "cut_at": None,  # cut the next slot write after this many bytes (then "reboot")
    # [n, nbytes]: SIGKILL this process during its n-th flash write (1-byte marks count), after
    # nbytes of it (null: all of it); a test then knows its kill hit a write.
    "kill_at_write": None,
    "min_range_mm": 250,
    "fast_silence": False,  # silent network waits pass in simulated time (budget tests)
}


def exact_sound_speed(temp_c: float) -> float:
    """The speed of sound in dry air [m/s] from the ideal-gas law, the fake's ground truth."""
    return 331.3 * math.sqrt(1 + temp_c / 273.15)


class CutFlash(FileFlash):
    """Flash whose next write of a whole slot stops after ``cut_at`` bytes (a power cut)."""

    def __init__(self, path: str, size: int, cut_at: int) -> None:
        super().__init__(path, size)
        self.cut_at: int | None = cut_at

    def write(self, offset: int, data: bytes) -> None:
        if self.cut_at is not None and len(data) > 1:
            cut = self.cut_at
            self.cut_at = None
            super().write(offset, data[:cut])
            raise PowerCut("write cut after %d of %d bytes" % (cut, len(data)))
        super().write(offset, data)


class KillFlash(FileFlash):
    """Flash whose process is SIGKILLed during its ``n``-th write, after ``nbytes`` of it."""

    def __init__(self, path: str, size: int, n: int, nbytes) -> None:
        super().__init__(path, size)
        self.left = n
        self.nbytes = nbytes

    def write(self, offset: int, data: bytes) -> None:
        self.left -= 1
        if self.left:
            super().write(offset, data)
            return
        super().write(offset, data if self.nbytes is None else data[: self.nbytes])
        os.system("kill -9 $PPID")  # the shell's parent: this micropython process
        raise PowerCut("SIGKILL did not arrive")


class FakeHardware:
    """The hardware layer's Unix twin. Time is injected: ``ticks_ms`` is the real time spent
    plus the simulated time of sensors, radio and waits, so budgets are tested fast."""

    min_range_mm = 250
    sensor = measure.ULTRASONIC

    def __init__(self, argv) -> None:
        self.dir = argv[0]
        self.wakes = int(argv[1]) if len(argv) > 1 else 1
        self.world = self._load("world.json", None)
        self._begin()

    # ---------------------------------------------------------------- world files

    def path(self, name: str) -> str:
        return self.dir + "/" + name

    def _load(self, name: str, default):
        try:
            with open(self.path(name)) as f:
                return json.load(f)
        except OSError:
            return default

    def _save_world(self) -> None:
        tmp = self.path("world.json.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(self.world))
        os.rename(tmp, self.path("world.json"))

    def _begin(self) -> None:
        sc = dict(SCENARIO_DEFAULTS)
        sc.update(self._load("scenario.json", {}))
        self.sc = sc
        self.min_range_mm = sc["min_range_mm"]
        w = self.world
        if w is None:
            w = {"utc_ms": sc["utc_ms"], "rtc_ms": 0, "asleep": False, "rtcmem": {}}
            self.from_sleep = False
        else:
            self.from_sleep = bool(w.get("asleep"))
            if not self.from_sleep:  # killed mid-wake, or told to: a power cut
                w["utc_ms"] += sc["power_off_ms"]
                w["rtc_ms"] = 0
                w["rtcmem"] = {}
        w["asleep"] = False
        self.world = w
        self._save_world()
        self.sim_ms = 0
        self.t_real0 = time.ticks_ms()
        self.ping_i = 0
        self.errors: list = []
        self.i2c = FakeI2C(self)  # a sensor powered up at this wake

    def wakes_left(self) -> bool:
        return self.wakes > 0

    # ---------------------------------------------------------------- clock

    def ticks_ms(self) -> int:
        return self.sim_ms + time.ticks_diff(time.ticks_ms(), self.t_real0)

    def ticks_diff(self, a: int, b: int) -> int:
        return a - b

    def advance(self, ms: int) -> None:
        self.sim_ms += ms

    def sleep_ms(self, ms: int) -> None:
        self.advance(ms)

    def wait_readable(self, poller, ms: int) -> bool:
        """A real poll. With ``fast_silence`` in the scenario: poll for a short while and, if
        nothing came, let the rest of ``ms`` pass in simulated time, so that a silent broker
        costs its full budget on the injected clock without costing it in real time."""
        if not self.sc["fast_silence"]:
            return bool(poller.poll(ms))
        t = time.ticks_ms()
        if poller.poll(min(ms, 10)):
            return True
        self.sim_ms += max(0, ms - time.ticks_diff(time.ticks_ms(), t))
        return False

    def woke_from_sleep(self) -> bool:
        return self.from_sleep

    def rtc_ms(self) -> int:
        return self.world["rtc_ms"] + self.ticks_ms()

    def true_utc_ms(self) -> int:
        return self.world["utc_ms"] + self.ticks_ms()

    def rtcmem_load(self) -> dict:
        return dict(self.world.get("rtcmem", {}))

    def rtcmem_save(self, mem: dict) -> None:
        self.world["rtcmem"] = dict(mem)
        self._save_world()

    def deep_sleep(self, ms: int) -> None:
        awake = self.ticks_ms()
        w = self.world
        w["utc_ms"] += awake + ms
        w["rtc_ms"] += awake + ms
        w["asleep"] = True
        line = {
            "awake_ms": awake,
            "sleep_ms": ms,
            "errors": self.errors,
            "steps": w.get("rtcmem", {}).get("steps"),
        }
        with open(self.path("wakes.jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")
        self._save_world()
        self.wakes -= 1
        if self.wakes > 0:
            self.world = self._load("world.json", None)
            self._begin()

    def record_error(self, e) -> None:
        self.errors.append(repr(e))

    # ---------------------------------------------------------------- storage

    def flash(self, path: str, size: int):
        kill = self.sc.get("kill_at_write")
        if kill is not None:
            return KillFlash(path, size, kill[0], kill[1])
        cut = self.sc.get("cut_at")
        if cut is None:
            return FileFlash(path, size)
        return CutFlash(path, size, cut)

    # ---------------------------------------------------------------- sensors

    def select_sensor(self, name: str) -> None:
        self.sensor = name
        if name == measure.TOF:
            self.min_range_mm = vl53l1x.MIN_RANGE_MM

    def pings(self, n: int):
        """As hw_esp32: echo times [µs] from the fake JSN-SR04T, or distances [mm] from the
        real VL53L1X driver talking to the register-level fake below."""
        if self.sensor == measure.TOF:
            return vl53l1x.pings(self.i2c, self, n)
        return [self.ping_us() for _ in range(n)]

    def ping_us(self):
        """Echo time [µs] of one ping, from the exact speed of sound; None on a timeout."""
        pattern = self.sc["pings"]
        kind = pattern[self.ping_i % len(pattern)]
        self.ping_i += 1
        if kind == "timeout":
            self.advance(38)  # the JSN-SR04T's echo line falls after about 38 ms
            return None
        d = self.sc["distance_mm"]
        if kind == "spike":
            d = d * 0.37  # a falling bag, a hand, an echo off the rim
        c = exact_sound_speed(self.sc["temp_c"])
        self.advance(60)  # ping cycle of the sensor
        return int(2 * d / 1000 / c * 1e6 + 0.5)

    def temp_c(self):
        self.advance(190)  # as the ESP32 driver: DS18B20 conversion at 10 bit
        if self.sc["temp_fail"]:
            return None
        return self.sc["temp_c"]

    def accel(self):
        self.advance(20)  # as the ESP32 driver: LIS3DH first sample after power-up
        if self.sc["accel_fail"]:
            return None
        a = math.radians(self.sc["tilt_deg"])
        return (math.sin(a), 0.0, math.cos(a))

    def battery_mv(self):
        return self.sc["bat_mv"]

    # ---------------------------------------------------------------- radio

    def wifi_connect(self, ssid, password, budget_ms: int):
        if not self.sc["wifi"] or self.sc["wifi_ms"] > budget_ms:
            self.advance(budget_ms)
            return None
        self.advance(self.sc["wifi_ms"])
        return -67

    def wifi_off(self) -> None:
        pass

    def ntp_ms(self, host, budget_ms: int):
        if not self.sc["ntp"]:
            self.advance(budget_ms)
            return None
        self.advance(40)
        return self.true_utc_ms()


class FakeI2C:
    """The I2C bus with a register-level VL53L1X at 0x29, driven by the scenario, so that the
    real driver (vl53l1x.py) runs on Unix. It implements the registers that driver uses and
    refuses the rest, so a driver change that touches another register fails the tests.

    Measurements take the sensor's 100 ms timing budget on the injected clock. The scenario's
    ``pings`` pattern applies to the measurements after the calibration ranging of the
    sensor's initialisation: ``ok`` and ``spike`` give a valid status and a distance,
    ``bad_status`` an invalid status (signal failure) with a bogus distance that must not be
    used, ``timeout`` a measurement that never becomes ready.
    """

    BUDGET_MS = 100
    STATUS_SIGNAL_FAIL = 4  # raw range status (ST's driver maps it to 2, "signal failure")

    def __init__(self, hw) -> None:
        self.hw = hw
        self.boot_at = hw.ticks_ms() + 1  # datasheet: 1.2 ms boot
        self.regs: dict = {}
        self.ranging = False
        self.calibrated = False  # the first ranging after the config is the VHV calibration
        self.n = 0  # measurements of the scenario's pattern started so far
        self.kind = "ok"
        self.ready_at: int | None = None

    def _bus(self, addr: int, addrsize: int) -> None:
        if addrsize != 16:
            raise ValueError("VL53L1X registers need addrsize=16, got %d" % addrsize)
        if addr != vl53l1x.ADDR or self.hw.sc["tof_absent"]:
            raise OSError(19)  # MicroPython's ENODEV: no acknowledge from the address

    def _next(self) -> None:
        """Start the next measurement (continuous ranging: after a start or a clear)."""
        if self.calibrated:
            pattern = self.hw.sc["pings"]
            self.kind = pattern[self.n % len(pattern)]
            self.n += 1
        now = self.hw.ticks_ms()
        stuck = self.kind == "timeout" or not self.hw.sc["tof_ready"]
        self.ready_at = None if stuck else now + self.BUDGET_MS

    def _ready(self) -> bool:
        return self.ranging and self.ready_at is not None and self.hw.ticks_ms() >= self.ready_at

    def _distance(self) -> int:
        d = self.hw.sc["distance_mm"]
        if self.kind == "spike":
            d = d * 0.37
        elif self.kind == "bad_status":
            d = 37  # what a failed measurement leaves in the register: never a level
        return int(d + 0.5)

    def readfrom_mem(self, addr: int, reg: int, n: int, addrsize: int = 8) -> bytes:
        self._bus(addr, addrsize)
        sc = self.hw.sc
        if reg == vl53l1x.SYSTEM_STATUS and n == 1:
            booted = sc["tof_boots"] and self.hw.ticks_ms() >= self.boot_at
            return bytes([1 if booted else 0])
        if reg == vl53l1x.MODEL_ID_REG and n == 2:
            return bytes([sc["tof_model_id"] >> 8, sc["tof_model_id"] & 0xFF])
        if reg == vl53l1x.GPIO_HV_MUX_CTRL and n == 1:
            return bytes([self.regs.get(reg, 0x01)])
        if reg == vl53l1x.GPIO_TIO_HV_STATUS and n == 1:
            active_high = not (self.regs.get(vl53l1x.GPIO_HV_MUX_CTRL, 0x01) & 0x10)
            line = self._ready() == active_high
            return bytes([0x02 | (1 if line else 0)])
        if reg == vl53l1x.RANGE_STATUS and n == 1:
            bad = self.kind == "bad_status"
            return bytes([self.STATUS_SIGNAL_FAIL if bad else vl53l1x.STATUS_VALID])
        if reg == vl53l1x.RANGE_MM and n == 2:
            d = self._distance()
            return bytes([d >> 8, d & 0xFF])
        raise NotImplementedError("fake VL53L1X: read of %d at 0x%04x" % (n, reg))

    def writeto_mem(self, addr: int, reg: int, data, addrsize: int = 8) -> None:
        self._bus(addr, addrsize)
        end = reg + len(data) - 1
        if reg >= vl53l1x.CONFIG_FIRST and end <= vl53l1x.MODE_START and len(data) > 1:
            for i in range(len(data)):  # the sensor increments the index by itself
                self.regs[reg + i] = data[i]
            return
        if len(data) != 1:
            raise NotImplementedError("fake VL53L1X: write of %d at 0x%04x" % (len(data), reg))
        v = data[0]
        if reg == vl53l1x.MODE_START and v in (0x00, 0x40):
            if v == 0x40 and len(self.regs) < len(vl53l1x.DEFAULT_CONFIG):
                raise NotImplementedError("fake VL53L1X: ranging before the default config")
            self.ranging = v == 0x40
            if self.ranging:
                self._next()
        elif reg == vl53l1x.INTERRUPT_CLEAR and v == 0x01:
            if self.ranging:
                self._next()
        elif reg == vl53l1x.VHV_LOOP_BOUND:
            self.regs[reg] = v
        elif reg == vl53l1x.VHV_INIT:
            self.regs[reg] = v
            self.calibrated = True
        else:
            raise NotImplementedError("fake VL53L1X: write of 0x%02x at 0x%04x" % (v, reg))


if __name__ == "__main__":
    print("run main.py, not this module", file=sys.stderr)
