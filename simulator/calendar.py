"""Local time for the fill model: Europe/Copenhagen with daylight saving, and Danish holidays.

People fill bins by local time (weekday, hour of day), so the model needs local fields for
arrays of UTC instants. ``zoneinfo`` uses the system's tz database (Debian's ``tzdata``
package, present on every Debian 12), so no Python ``tzdata`` dependency is needed; the
offsets are looked up once per distinct UTC hour, which keeps a year of hourly samples for
thousands of bins cheap. Danish public holidays are computed from Easter (Gauss/Anonymous
Gregorian computus), not read from a table, so any year works.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def easter(year: int) -> dt.date:
    """Western Easter Sunday (Anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@lru_cache(maxsize=256)
def danish_holidays(year: int) -> frozenset[dt.date]:
    """Official Danish public holidays (helligdage) of ``year``.

    Store Bededag (4th Friday after Easter) was abolished from 2024 on. Grundlovsdag (5 June)
    and Christmas Eve are not public holidays by law, so they are not in the set.
    """
    e = easter(year)
    days = {
        dt.date(year, 1, 1),
        e - dt.timedelta(days=3),  # Skærtorsdag
        e - dt.timedelta(days=2),  # Langfredag
        e,  # Påskedag
        e + dt.timedelta(days=1),  # 2. påskedag
        e + dt.timedelta(days=39),  # Kristi himmelfartsdag
        e + dt.timedelta(days=49),  # Pinsedag
        e + dt.timedelta(days=50),  # 2. pinsedag
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
    }
    if year < 2024:
        days.add(e + dt.timedelta(days=26))  # Store Bededag
    return frozenset(days)


def is_danish_holiday(day: dt.date) -> bool:
    return day in danish_holidays(day.year)


def local_fields(
    ts_s: np.ndarray | float, tz: ZoneInfo = COPENHAGEN
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weekday 0=Monday, hour 0-23, local day number since the epoch) for UTC seconds ``ts_s``.

    Offsets change only on whole hours in every zone we use, so one lookup per distinct UTC hour
    gives exact local fields.
    """
    t = np.atleast_1d(np.asarray(ts_s, dtype=np.int64))
    hours = t // 3600
    uniq, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array(
        [
            int(dt.datetime.fromtimestamp(int(h) * 3600, tz).utcoffset().total_seconds())  # type: ignore[union-attr]
            for h in uniq
        ],
        dtype=np.int64,
    )
    local = t + offsets[inverse]
    day = local // 86400
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    hour = (local % 86400) // 3600
    return weekday, hour, day


def holiday_mask(local_day: np.ndarray) -> np.ndarray:
    """True where the local day number (from :func:`local_fields`) is a Danish public holiday."""
    uniq, inverse = np.unique(local_day, return_inverse=True)
    epoch = dt.date(1970, 1, 1)
    flags = np.array(
        [is_danish_holiday(epoch + dt.timedelta(days=int(d))) for d in uniq], dtype=bool
    )
    return flags[inverse]
