# smartbins firmware tests: the real VL53L1X driver against hw_fake's register-level fake bus,
# under `micropython`. stdin: one JSON scenario per line; stdout: one JSON answer per line with
# the distances (or null), every bus transaction and the time spent on the injected clock.
import json
import sys

import measure
import vl53l1x
from hw_fake import SCENARIO_DEFAULTS, FakeI2C


class Clock:
    """The slice of the hardware layer the driver and the fake use: an injected clock."""

    def __init__(self, sc: dict) -> None:
        self.sc = sc
        self.t = 0

    def ticks_ms(self) -> int:
        return self.t

    def ticks_diff(self, a: int, b: int) -> int:
        return a - b

    def sleep_ms(self, ms: int) -> None:
        self.t += ms


class Recording(FakeI2C):
    def __init__(self, hw) -> None:
        super().__init__(hw)
        self.log: list = []

    def readfrom_mem(self, addr, reg, n, addrsize=8):
        out = super().readfrom_mem(addr, reg, n, addrsize=addrsize)
        self.log.append(["r", reg, n])
        return out

    def writeto_mem(self, addr, reg, data, addrsize=8):
        super().writeto_mem(addr, reg, data, addrsize=addrsize)
        self.log.append(["w", reg, list(data) if len(data) < 4 else len(data)])


print(json.dumps({"sensors": list(measure.SENSORS), "config_len": len(vl53l1x.DEFAULT_CONFIG)}))
for line in sys.stdin:
    req = json.loads(line)
    sc = dict(SCENARIO_DEFAULTS)
    sc.update(req["scenario"])
    clock = Clock(sc)
    bus = Recording(clock)
    mm = vl53l1x.pings(bus, clock, req.get("n", 7))
    print(json.dumps({"mm": mm, "log": bus.log, "ms": clock.t}))
