# smartbins firmware: the device's side of docs/protocol.md (encode readings, batches, status;
# Apache-2.0; part of smartbins.           decode config and acknowledgements, checking types)

import json

from micropython import const

SCHEMA_VERSION = const(1)
BATCH_READINGS = const(50)  # readings per batch message (docs/protocol.md "Batch sizes")
# The wire keys of a reading, in the order of the protocol's table.
READING_KEYS = (
    "seq",
    "boot",
    "ts",
    "mm",
    "fill",
    "temp",
    "tilt",
    "bat",
    "rssi",
    "dropped",
    "interval",
    "cal",
    "fw",
    "flags",
    "err",
)
CONFIG_INTS = (
    "server_ts",
    "cal",
    "empty_mm",
    "full_mm",
    "interval",
    "interval_near_full",
    "interval_low_battery",
    "low_battery",
)
CONFIG_FLOATS = ("near_full", "fire_temp", "fire_rise", "tilt")


class WireError(ValueError):
    """A config or acknowledgement the device cannot use; it is logged and ignored."""


def topic(kind: str, dev: str) -> str:
    if kind in ("reading", "batch", "status"):
        return "sb/up/" + dev + "/" + kind
    return "sb/down/" + dev + "/" + kind


def reading_body(rec: dict) -> dict:
    """The reading as it goes on the wire: protocol keys only, absent values left out."""
    out = {}
    for k in READING_KEYS:
        v = rec.get(k)
        if v is None or (k == "err" and not v):
            continue
        out[k] = v
    return out


def reading(dev: str, rec: dict) -> tuple:
    body = reading_body(rec)
    body["v"] = SCHEMA_VERSION
    body["dev"] = dev
    return topic("reading", dev), json.dumps(body).encode()


def batch(dev: str, recs: list) -> tuple:
    body = {"v": SCHEMA_VERSION, "dev": dev, "readings": [reading_body(r) for r in recs]}
    return topic("batch", dev), json.dumps(body).encode()


def status(dev: str, fields: dict) -> tuple:
    body = {"v": SCHEMA_VERSION, "dev": dev}
    for k in fields:
        if fields[k] is not None:
            body[k] = fields[k]
    return topic("status", dev), json.dumps(body).encode()


def will(dev: str) -> tuple:
    return status(dev, {"state": "lost"})


def _int(obj: dict, key: str) -> int:
    v = obj.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise WireError(key + ": not an integer")
    return v


def _ranges(obj: dict, key: str) -> list:
    v = obj.get(key)
    if not isinstance(v, list):
        raise WireError(key + ": not a list of ranges")
    out = []
    for pair in v:
        if not isinstance(pair, list) or len(pair) != 2:
            raise WireError(key + ": not a [first, last] pair")
        lo, hi = pair
        if not isinstance(lo, int) or not isinstance(hi, int) or lo > hi:
            raise WireError(key + ": bad range")
        out.append((lo, hi))
    return out


def decode(dev: str, topic_: str, payload: bytes) -> tuple:
    """(kind, fields) of a message for this device: kind "ack" or "config"."""
    kind = topic_.rsplit("/", 1)[-1]
    if topic_ != topic(kind, dev) or kind not in ("ack", "config"):
        raise WireError("unexpected topic " + topic_)
    try:
        obj = json.loads(payload)
    except ValueError:
        raise WireError(kind + ": not JSON") from None
    if not isinstance(obj, dict) or obj.get("v") != SCHEMA_VERSION or obj.get("dev") != dev:
        raise WireError(kind + ": wrong version or device")
    if kind == "ack":
        return kind, {
            "server_ts": _int(obj, "server_ts"),
            "stored": _ranges(obj, "stored"),
            "rejected": _ranges(obj, "rejected"),
        }
    cfg: dict = {}
    for k in CONFIG_INTS:
        cfg[k] = _int(obj, k)
    for k in CONFIG_FLOATS:
        v = obj.get(k)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise WireError(k + ": not a number")
        cfg[k] = float(v)
    if not 0 <= cfg["full_mm"] < cfg["empty_mm"] or cfg["interval"] < 10:
        raise WireError("config: inconsistent calibration or interval")
    return kind, cfg
