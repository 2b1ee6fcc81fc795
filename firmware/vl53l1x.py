# smartbins firmware: VL53L1X time-of-flight distance sensor over I2C (16-bit register addresses)
# Apache-2.0; part of smartbins. Written for smartbins; the register facts are ST's.
#
# Register addresses, the default configuration block (0x2D..0x87) and the range-status codes
# come from ST's VL53L1X datasheet (DS12385), its user manual UM2356 and the ultra-lite driver
# STSW-IMG009 (VL53L1X_api.c/.h, BSD-3-Clause), read to learn the hardware, not copied. The
# default block puts the sensor in "long" distance mode (up to about 4 m) with a timing budget
# of about 100 ms per measurement, data-ready signalled active high.
#
# Every wait is a time budget on the hardware layer's clock (``clock.ticks_ms``,
# ``clock.ticks_diff``, ``clock.sleep_ms``), never an endless loop: on the Unix port that clock
# is the injected one, so a sensor that never answers costs its budget in simulated time.

from log import log_error
from micropython import const

ADDR = const(0x29)  # 7-bit I2C address at power-up (ST writes it 8-bit: 0x52)
MODEL_ID = const(0xEACC)  # IDENTIFICATION__MODEL_ID (16 bit) of every VL53L1X

VHV_LOOP_BOUND = const(0x0008)  # VHV_CONFIG__TIMEOUT_MACROP_LOOP_BOUND
VHV_INIT = const(0x000B)  # 0: start VHV from the previous temperature
CONFIG_FIRST = const(0x002D)  # first register of the default configuration block
GPIO_HV_MUX_CTRL = const(0x0030)  # bit 4 set: interrupt active low
GPIO_TIO_HV_STATUS = const(0x0031)  # bit 0: interrupt line (data ready, per polarity)
INTERRUPT_CLEAR = const(0x0086)  # write 0x01: result read, arm the next one
MODE_START = const(0x0087)  # write 0x40: continuous ranging; 0x00: stop
RANGE_STATUS = const(0x0089)  # RESULT__RANGE_STATUS, low 5 bits
RANGE_MM = const(0x0096)  # RESULT__FINAL_CROSSTALK_CORRECTED_RANGE_MM_SD0 (16 bit)
SYSTEM_STATUS = const(0x00E5)  # FIRMWARE__SYSTEM_STATUS, bit 0 set once booted
MODEL_ID_REG = const(0x010F)

# The raw range status of a complete, trustworthy measurement (ST's driver maps it to 0,
# "valid"). Anything else is sigma or signal failure, phase out of bounds, wraparound, ...: the
# distance register then holds no trustworthy value.
STATUS_VALID = const(9)

BOOT_MS = const(100)  # the datasheet's boot time is 1.2 ms; generous for a cold supply
SAMPLE_MS = const(300)  # one measurement: three timing budgets
POLL_MS = const(5)
MIN_RANGE_MM = const(40)  # the datasheet's minimum ranging distance

# Registers 0x2D..0x87 in order (91 bytes), written in one auto-incrementing I2C write.
# 0x2D-0x2F: standard I2C speed, I2C and GPIO pulled up at AVDD; 0x30: interrupt active high;
# 0x46: interrupt on "new sample ready"; 0x4B, 0x60, 0x63, 0x69, 0x78-0x7B: long mode;
# 0x5E-0x5F / 0x61-0x62: timeout macro-periods A/B (about 100 ms); 0x64-0x65 sigma limit
# (90 mm); 0x66-0x67 minimum signal rate; 0x6C-0x6F inter-measurement period; 0x7F-0x80 the
# full 16x16 region of interest; 0x86-0x87: interrupt not cleared, ranging not started.
DEFAULT_CONFIG = (
    b"\x00\x00\x00"  # 0x2D
    b"\x01\x02\x00\x02\x08\x00\x08\x10\x01\x01\x00\x00\x00\x00\xff\x00"  # 0x30
    b"\x0f\x00\x00\x00\x00\x00\x20\x0b\x00\x00\x02\x0a\x21\x00\x00\x05"  # 0x40
    b"\x00\x00\x00\x00\xc8\x00\x00\x38\xff\x01\x00\x08\x00\x00\x01\xcc"  # 0x50
    b"\x0f\x01\xf1\x0d\x01\x68\x00\x80\x08\xb8\x00\x00\x00\x00\x0f\x89"  # 0x60
    b"\x00\x00\x00\x00\x00\x00\x00\x01\x0f\x0d\x0e\x0e\x00\x00\x02\xc7"  # 0x70
    b"\xff\x9b\x00\x00\x00\x01\x00\x00"  # 0x80
)


class VL53L1XError(Exception):
    """The sensor is there but not usable: it did not boot, or it is not a VL53L1X."""


class VL53L1X:
    """One VL53L1X on ``i2c`` (a ``machine.I2C`` or a fake with the same two methods)."""

    def __init__(self, i2c, clock, addr: int = ADDR) -> None:
        self.i2c = i2c
        self.clock = clock
        self.addr = addr
        self.active_high = True  # data-ready polarity, read back after the configuration

    # ---------------------------------------------------------------- registers

    def _read(self, reg: int, n: int) -> bytes:
        return self.i2c.readfrom_mem(self.addr, reg, n, addrsize=16)

    def _write(self, reg: int, data: bytes) -> None:
        self.i2c.writeto_mem(self.addr, reg, data, addrsize=16)

    def _u8(self, reg: int) -> int:
        return self._read(reg, 1)[0]

    def _u16(self, reg: int) -> int:
        b = self._read(reg, 2)
        return (b[0] << 8) | b[1]  # the sensor is big-endian

    def _until(self, cond, budget_ms: int, poll_ms: int) -> bool:
        """Poll ``cond()`` until true or ``budget_ms`` has passed on the hardware clock."""
        c = self.clock
        t0 = c.ticks_ms()
        while not cond():
            if c.ticks_diff(c.ticks_ms(), t0) >= budget_ms:
                return False
            c.sleep_ms(poll_ms)
        return True

    # ---------------------------------------------------------------- operations

    def init(self) -> None:
        """Boot, identity, default configuration, and the first ranging the sensor needs to
        calibrate its VHV to the temperature (as ST's SensorInit does). Raises VL53L1XError,
        or OSError when the bus does not answer."""
        if not self._until(lambda: self._u8(SYSTEM_STATUS) & 1, BOOT_MS, 1):
            raise VL53L1XError("VL53L1X did not boot within %d ms" % BOOT_MS)
        model = self._u16(MODEL_ID_REG)
        if model != MODEL_ID:
            raise VL53L1XError(
                "model id 0x%04x at I2C 0x%02x is not a VL53L1X (0x%04x): check the part and "
                "its wiring" % (model, self.addr, MODEL_ID)
            )
        self._write(CONFIG_FIRST, DEFAULT_CONFIG)
        self.active_high = not (self._u8(GPIO_HV_MUX_CTRL) & 0x10)
        self.start()
        if not self._until(self.data_ready, SAMPLE_MS, POLL_MS):
            self.stop()
            raise VL53L1XError("VL53L1X calibration ranging not ready within %d ms" % SAMPLE_MS)
        self.clear()
        self.stop()
        self._write(VHV_LOOP_BOUND, b"\x09")  # two VHV loop bounds from now on
        self._write(VHV_INIT, b"\x00")

    def start(self) -> None:
        self._write(MODE_START, b"\x40")

    def stop(self) -> None:
        self._write(MODE_START, b"\x00")

    def clear(self) -> None:
        self._write(INTERRUPT_CLEAR, b"\x01")

    def data_ready(self) -> bool:
        return bool(self._u8(GPIO_TIO_HV_STATUS) & 1) == self.active_high

    def read_mm(self):
        """One measurement [mm] while ranging; None if it was not ready within its budget or
        its range status is not valid. A measurement that never comes restarts the ranging,
        so one stuck measurement does not cost the rest of the wake."""
        if not self._until(self.data_ready, SAMPLE_MS, POLL_MS):
            self.stop()
            self.start()
            return None
        status = self._u8(RANGE_STATUS) & 0x1F
        mm = self._u16(RANGE_MM)
        self.clear()
        return mm if status == STATUS_VALID else None


def pings(i2c, clock, n: int):
    """``n`` distances [mm] (None where a measurement failed) from a VL53L1X that was just
    powered, or None when the sensor itself is not usable (absent from the bus, not a
    VL53L1X, never booted): the caller reports that as a bus error, never as a level."""
    s = VL53L1X(i2c, clock)
    try:
        s.init()
        s.start()
        try:
            return [s.read_mm() for _ in range(n)]
        finally:
            s.stop()
    except VL53L1XError as e:
        log_error("tof:", e)
    except OSError as e:
        log_error("tof: no answer on I2C at 0x%02x (%s): check SDA/SCL and power" % (ADDR, e))
    return None
