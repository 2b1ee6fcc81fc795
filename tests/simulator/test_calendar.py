"""Local time and Danish holidays: the fill pattern runs on Copenhagen time."""

import datetime as dt

import numpy as np

from simulator.calendar import danish_holidays, easter, holiday_mask, local_fields


def test_easter_known_dates():
    assert easter(2024) == dt.date(2024, 3, 31)
    assert easter(2025) == dt.date(2025, 4, 20)
    assert easter(2026) == dt.date(2026, 4, 5)
    assert easter(2019) == dt.date(2019, 4, 21)


def test_danish_holidays_2025_and_store_bededag_abolished():
    days = danish_holidays(2025)
    assert len(days) == 10
    assert dt.date(2025, 4, 17) in days  # Skærtorsdag
    assert dt.date(2025, 5, 29) in days  # Kristi himmelfart
    assert dt.date(2025, 6, 9) in days  # 2. pinsedag
    assert dt.date(2025, 5, 16) not in days  # Store Bededag, abolished from 2024
    assert dt.date(2023, 5, 5) in danish_holidays(2023)


def test_local_fields_follow_daylight_saving():
    # 2025-03-30 01:00 UTC: clocks go from 02:00 CET to 03:00 CEST
    before = int(dt.datetime(2025, 3, 30, 0, 30, tzinfo=dt.UTC).timestamp())
    after = int(dt.datetime(2025, 3, 30, 1, 30, tzinfo=dt.UTC).timestamp())
    wd, hr, _ = local_fields(np.array([before, after]))
    assert hr.tolist() == [1, 3]
    assert wd.tolist() == [6, 6]  # a Sunday
    summer = int(dt.datetime(2025, 7, 1, 22, 30, tzinfo=dt.UTC).timestamp())
    wd, hr, _ = local_fields(summer)
    assert (int(wd[0]), int(hr[0])) == (2, 0)  # already Wednesday 00:30 in Copenhagen


def test_holiday_mask_on_local_days():
    t = int(dt.datetime(2025, 12, 24, 23, 30, tzinfo=dt.UTC).timestamp())  # 25 Dec 00:30 local
    _, _, day = local_fields(t)
    assert holiday_mask(day).tolist() == [True]
