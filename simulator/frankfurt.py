"""Reading the Frankfurt glass-container data (``<shared>/data/fill/frankfurt_glass/``).

The data stays where it is (``../shared`` next to the repository); nothing is copied into the
repo. Columns used: ``unix_time`` (ms, UTC), ``Height`` (distance, e.g. ``102 cm``),
``Temperature``, ``Voltage``, ``Tilt``; see the folder's README.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

from simulator.analysis import SensorSeries

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "data" / "fill" / "frankfurt_glass"


def _num(text: str) -> float:
    head = text.strip().split(" ")[0] if text else ""
    try:
        return float(head)
    except ValueError:
        return float("nan")


def load_sensor(path: Path) -> SensorSeries:
    t, d, temp, volt, tilt = [], [], [], [], []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            height = _num(row["Height"])
            if np.isnan(height):
                continue
            t.append(int(row["unix_time"]) // 1000)
            d.append(height)
            temp.append(_num(row["Temperature"]))
            volt.append(_num(row["Voltage"]))
            tilt.append(_num(row["Tilt"]))
    name = path.name.split(".")[0]
    return SensorSeries(
        name, np.array(t, np.int64), np.array(d), np.array(temp), np.array(volt), np.array(tilt)
    )


def load_all(folder: Path = DEFAULT_DIR) -> list[SensorSeries]:
    """Every sensor of the folder, sorted by name. Raises FileNotFoundError if none is there."""
    files = sorted((folder / "readings").glob("*.csv.gz"))
    if not files:
        raise FileNotFoundError(f"no readings/*.csv.gz under {folder}")
    return [load_sensor(p) for p in files]
