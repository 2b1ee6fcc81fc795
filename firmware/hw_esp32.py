# smartbins firmware: the ESP32 hardware layer (JSN-SR04T or VL53L1X, LIS3DH, DS18B20, battery,
# Apache-2.0; part of smartbins. Wi-Fi, SNTP, RTC memory, deep sleep). Wiring: docs/firmware.md.

import json
import socket
import struct
import time

import ds18x20
import machine
import measure
import network
import onewire
import vl53l1x
from log import log_warn
from micropython import const
from ringbuf import FileFlash

PIN_TRIG = const(5)  # JSN-SR04T trigger
PIN_ECHO = const(18)  # JSN-SR04T echo (through a 5 V -> 3.3 V divider)
PIN_SENSOR_POWER = const(25)  # P-MOSFET gate: sensors unpowered while the node sleeps
PIN_ONEWIRE = const(4)  # DS18B20 data (4.7 kOhm pull-up)
PIN_SDA = const(21)  # LIS3DH and, with sensor "tof", the VL53L1X (0x29) on one I2C bus
PIN_SCL = const(22)
PIN_BATTERY = const(34)  # battery through a 1 MOhm / 1 MOhm divider, 100 nF to ground
BATTERY_DIVIDER = 2
ECHO_TIMEOUT_US = const(40000)  # beyond the JSN-SR04T's 6 m range (35 ms round trip)
PING_GAP_MS = const(60)  # the sensor needs ~50 ms between pings
LIS3DH_ADDR = const(0x18)
NTP_DELTA_S = 2208988800  # 1900-01-01 to 1970-01-01


class Hardware:
    """The real drivers behind the interface firmware/hw_fake.py imitates on Unix."""

    sensor = measure.ULTRASONIC  # config.json "sensor" (select_sensor)
    min_range_mm = 250  # JSN-SR04T blind zone

    def __init__(self) -> None:
        self.power = machine.Pin(PIN_SENSOR_POWER, machine.Pin.OUT, value=0)  # P-FET: 0 = on
        self.trig = machine.Pin(PIN_TRIG, machine.Pin.OUT, value=0)
        self.echo = machine.Pin(PIN_ECHO, machine.Pin.IN)
        self.i2c = machine.I2C(0, sda=machine.Pin(PIN_SDA), scl=machine.Pin(PIN_SCL), freq=400000)
        self.rtc = machine.RTC()
        self.wlan: network.WLAN | None = None
        self._accel_ready = False
        time.sleep_ms(50)  # sensor supply settles

    # ---------------------------------------------------------------- clock and memory

    def path(self, name: str) -> str:
        return name

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b) -> int:
        return time.ticks_diff(a, b)

    def sleep_ms(self, ms: int) -> None:
        time.sleep_ms(ms)

    def wait_readable(self, poller, ms: int) -> bool:
        return bool(poller.poll(ms))

    def woke_from_sleep(self) -> bool:
        return machine.reset_cause() == machine.DEEPSLEEP_RESET

    def rtc_ms(self) -> int:
        """The RTC counter [ms]: runs through deep sleep, restarts at a power cut."""
        return time.time_ns() // 1000000

    def rtcmem_load(self) -> dict:
        try:
            mem = json.loads(self.rtc.memory())
            return mem if isinstance(mem, dict) else {}
        except ValueError:
            return {}

    def rtcmem_save(self, mem: dict) -> None:
        self.rtc.memory(json.dumps(mem).encode())

    def flash(self, path: str, size: int):
        return FileFlash(path, size)

    def record_error(self, e) -> None:
        pass

    def deep_sleep(self, ms: int) -> None:
        self.power.value(1)  # sensors off
        machine.deepsleep(ms)

    # ---------------------------------------------------------------- sensors

    def select_sensor(self, name: str) -> None:
        """The distance sensor fitted: "ultrasonic" (JSN-SR04T) or "tof" (VL53L1X)."""
        self.sensor = name
        self.min_range_mm = vl53l1x.MIN_RANGE_MM if name == measure.TOF else 250

    def pings(self, n: int):
        """``n`` raw pings: echo times [µs] (JSN-SR04T) or distances [mm] (VL53L1X), None for
        a ping that found nothing; None for all of them when the sensor does not answer."""
        if self.sensor == measure.TOF:
            return vl53l1x.pings(self.i2c, self, n)
        return [self.ping_us() for _ in range(n)]

    def ping_us(self):
        """Round-trip echo time [µs] of one JSN-SR04T ping; None on a timeout."""
        time.sleep_ms(PING_GAP_MS)
        self.trig.value(1)
        time.sleep_us(20)
        self.trig.value(0)
        t = machine.time_pulse_us(self.echo, 1, ECHO_TIMEOUT_US)
        return t if t > 0 else None

    def temp_c(self):
        """DS18B20 at 10-bit resolution (0.25 °C, 188 ms conversion); None if absent."""
        try:
            ds = ds18x20.DS18X20(onewire.OneWire(machine.Pin(PIN_ONEWIRE)))
            roms = ds.scan()
            if not roms:
                return None
            ds.write_scratch(roms[0], b"\x00\x00\x3f")
            ds.convert_temp()
            time.sleep_ms(190)
            return ds.read_temp(roms[0])
        except (OSError, onewire.OneWireError):
            return None

    def accel(self):
        """(x, y, z) [g] from a LIS3DH; None if it does not answer on I2C."""
        try:
            if not self._accel_ready:
                if self.i2c.readfrom_mem(LIS3DH_ADDR, 0x0F, 1)[0] != 0x33:
                    return None
                self.i2c.writeto_mem(LIS3DH_ADDR, 0x20, b"\x57")  # 100 Hz, x/y/z on
                self.i2c.writeto_mem(LIS3DH_ADDR, 0x23, b"\x88")  # block update, high res
                time.sleep_ms(20)
                self._accel_ready = True
            raw = self.i2c.readfrom_mem(LIS3DH_ADDR, 0x28 | 0x80, 6)
            x, y, z = struct.unpack("<hhh", raw)
            return (x / 16384, y / 16384, z / 16384)
        except OSError:
            return None

    def battery_mv(self):
        try:
            adc = machine.ADC(machine.Pin(PIN_BATTERY))
            adc.atten(machine.ADC.ATTN_11DB)
            return adc.read_uv() * BATTERY_DIVIDER // 1000
        except (OSError, ValueError):
            return None

    # ---------------------------------------------------------------- radio

    def wifi_connect(self, ssid, password, budget_ms: int):
        """Associate within ``budget_ms``; the RSSI [dBm], or None (radio off again)."""
        if not ssid:
            return None
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        self.wlan = wlan
        wlan.connect(ssid, password)
        t0 = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), t0) > budget_ms:
                self.wifi_off()
                return None
            time.sleep_ms(50)
        return wlan.status("rssi")

    def wifi_off(self) -> None:
        if self.wlan is not None:
            self.wlan.active(False)
            self.wlan = None

    def ntp_ms(self, host, budget_ms: int):
        """UTC [ms since 1970] from one SNTP request, or None within ``budget_ms``."""
        if not host:
            return None
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(budget_ms / 1000)
            addr = socket.getaddrinfo(host, 123)[0][-1]
            s.sendto(b"\x1b" + b"\0" * 47, addr)
            data = s.recv(48)
            t0 = time.ticks_ms()
            secs, frac = struct.unpack("!II", data[40:48])
            return (
                (secs - NTP_DELTA_S) * 1000
                + (frac * 1000 >> 32)
                + time.ticks_diff(time.ticks_ms(), t0)
            )
        except OSError as e:
            log_warn("ntp:", e)
            return None
        finally:
            s.close()
