# smartbins firmware: distance, fill, tilt and alarms from raw sensor values
# Apache-2.0; part of smartbins. Pure functions plus one `measure(hw, cfg)` that reads the sensors.

import math

from micropython import const

# Flag bits and sensor error codes of docs/protocol.md.
FIRE = const(0x01)
TILT = const(0x02)
LOW_BATTERY = const(0x04)
SENSOR_ERROR = const(0x08)
TEMP_SENSOR_ERROR = const(0x10)
TIME_ESTIMATED = const(0x20)
UNCALIBRATED = const(0x40)
NEAR_FULL = const(0x80)

ECHO_TIMEOUT = const(1)
BLIND_ZONE = const(2)
UNSTABLE = const(3)
BUS_ERROR = const(4)

PINGS = const(7)  # pings per wake; the median of the inliers is reported
MIN_VALID = const(3)  # fewer valid pings than this: no trustworthy distance
OUTLIER_MM = const(20)  # a ping further than max(20 mm, 5 %) from the median is an outlier
ULTRASONIC = "ultrasonic"  # JSN-SR04T: a ping is a round-trip echo time [µs]
TOF = "tof"  # VL53L1X time of flight: a ping is a distance [mm]
SENSORS = (ULTRASONIC, TOF)  # config.json "sensor", as `smartbins provision --sensor` writes it
DEFAULT_TEMP_C = 20.0  # compensation when the temperature sensor fails (TEMP_SENSOR_ERROR)
WARM_C = 40.0  # above this the near-full interval applies (docs/protocol.md)


def sound_speed(temp_c: float) -> float:
    """Speed of sound in air [m/s] at ``temp_c`` [°C]: the linear form 331.3 + 0.606·T, within
    0.4 % of 331.3·sqrt(1 + T/273.15) from -20 to +50 °C and cheap on a single-precision FPU."""
    return 331.3 + 0.606 * temp_c


def echo_to_mm(echo_us: int, temp_c: float) -> float:
    """One-way distance [mm] from a round-trip echo time [µs]: µs · m/s = µm, halved."""
    return echo_us * sound_speed(temp_c) / 2000.0


def ping_mm(sensor: str, raw, temp_c: float):
    """One ping's distance [mm], or None for a ping that found nothing. An ultrasonic ping is
    an echo time, compensated for the speed of sound at ``temp_c``; a time-of-flight ping is
    already a distance, measured with light, whose speed does not depend on the air."""
    if raw is None or raw <= 0:
        return None
    if sensor == TOF:
        return float(raw)
    return echo_to_mm(raw, temp_c)


def median(values: list) -> float:
    s = sorted(values)
    n = len(s)
    if n % 2:
        return s[n // 2]
    return (s[n // 2 - 1] + s[n // 2]) / 2


def robust_distance(samples: list) -> tuple:
    """(distance [mm] or None, error code or 0) from pings; None entries are timeouts.

    Timeouts are dropped, then pings further than max(20 mm, 5 %) from the median are rejected
    as outliers (a hand, a falling bag, a multipath echo). With fewer than three pings left the
    wake has no trustworthy distance: an error code, never a guessed level.
    """
    valid = [s for s in samples if s is not None]
    if len(valid) < MIN_VALID:
        return None, ECHO_TIMEOUT
    med = median(valid)
    tol = max(OUTLIER_MM, 0.05 * med)
    inliers = [s for s in valid if abs(s - med) <= tol]
    if len(inliers) < MIN_VALID:
        return None, UNSTABLE
    return median(inliers), 0


def fill_pct(distance_mm: float, empty_mm: int, full_mm: int) -> float:
    """Fill [%] from a distance: 0 at the empty-bin distance, 100 at the full distance."""
    return (empty_mm - distance_mm) * 100.0 / (empty_mm - full_mm)


def tilt_deg(ax: float, ay: float, az: float) -> float:
    """Angle [°] between the measured gravity vector and the mounted axis (z)."""
    norm = math.sqrt(ax * ax + ay * ay + az * az)
    if norm == 0:
        return 0.0
    c = max(-1.0, min(1.0, az / norm))
    return math.degrees(math.acos(c))


def measure(hw, cfg: dict, last_temp) -> dict:
    """Read every sensor once; return the reading's measured fields (wire keys) with flags/err.

    ``cfg`` holds the calibration and thresholds (docs/protocol.md "Config"); ``last_temp`` is
    the previous wake's temperature [°C] (None if unknown) for the fire-rise alarm.
    """
    flags = 0
    err = []
    temp = hw.temp_c()
    comp = temp
    if temp is None:
        flags |= TEMP_SENSOR_ERROR
        comp = DEFAULT_TEMP_C
    raw = hw.pings(PINGS)
    if raw is None:  # the distance sensor itself did not answer (time of flight on I2C)
        mm, code = None, BUS_ERROR
    else:
        mm, code = robust_distance([ping_mm(hw.sensor, r, comp) for r in raw])
    out = {"temp": None if temp is None else round(temp, 1)}
    if mm is not None and mm < hw.min_range_mm:
        mm, code = None, BLIND_ZONE
    if mm is None:
        flags |= SENSOR_ERROR
        err.append(code)
        out["mm"] = None
        out["fill"] = None
    else:
        out["mm"] = int(mm + 0.5)
        fill = fill_pct(mm, cfg["empty_mm"], cfg["full_mm"])
        out["fill"] = round(max(-100.0, min(1000.0, fill)), 1)
        if fill >= cfg["near_full"]:
            flags |= NEAR_FULL
    if not cfg.get("cal"):
        flags |= UNCALIBRATED
    acc = hw.accel()
    if acc is None:
        err.append(BUS_ERROR)
        out["tilt"] = None
    else:
        t = tilt_deg(acc[0], acc[1], acc[2])
        out["tilt"] = round(t, 1)
        if t > cfg["tilt"]:
            flags |= TILT
    bat = hw.battery_mv()
    out["bat"] = bat
    if bat is not None and bat < cfg["low_battery"]:
        flags |= LOW_BATTERY
    if temp is not None and (
        temp >= cfg["fire_temp"] or (last_temp is not None and temp - last_temp >= cfg["fire_rise"])
    ):
        flags |= FIRE
    out["flags"] = flags
    out["err"] = err
    return out


def choose_interval(cfg: dict, m: dict) -> int:
    """Report interval [s] for the next sleep (docs/protocol.md "Report interval")."""
    flags = m["flags"]
    temp = m.get("temp")
    if flags & (FIRE | NEAR_FULL) or (temp is not None and temp > WARM_C):
        return cfg["interval_near_full"]
    if flags & LOW_BATTERY:
        return cfg["interval_low_battery"]
    return cfg["interval"]
