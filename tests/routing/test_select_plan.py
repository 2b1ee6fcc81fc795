"""routing.select and routing.plan: which bins must, may and need not be emptied, and every
day plan passes the routing core's checker."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.feasibility import check_routes
from routing.plan import DayBins, Fleet, plan_day
from routing.plan_params import SelectParams
from routing.select import (
    candidate_bins,
    lookahead_days,
    opened,
    opportunities,
    prizes,
    required_bins,
    stream_groups,
)
from routing.stop import MaxIterations

LON, LAT = 12.57, 55.68


def small_fleet(n_trucks: int = 3, streams=("residual", "glass")) -> Fleet:
    s = len(streams)
    cap = np.zeros((n_trucks, s))
    for v in range(n_trucks):
        cap[v, v % s] = 4000.0
        cap[v, (v + 1) % s] = 2000.0
    return Fleet(
        depot_lonlat=np.array([[LON, LAT]]),
        disposal_lonlat=np.array([[LON + 0.03, LAT + 0.01], [LON - 0.02, LAT]]),
        disposal_accepts=np.array([[True, False], [False, True]])[:, :s],
        unload_s=np.array([600.0, 300.0]),
        truck_depot=np.zeros(n_trucks, np.int64),
        capacity_l=cap,
        shift_s=np.full(n_trucks, 8 * 3600.0),
        streams=tuple(streams),
    )


def day_bins(rng: np.random.Generator, n: int, n_streams: int = 2) -> DayBins:
    return DayBins(
        lonlat=np.column_stack([LON + rng.normal(0, 0.01, n), LAT + rng.normal(0, 0.005, n)]),
        stream=rng.integers(0, n_streams, n).astype(np.int64),
        volume_l=rng.choice([140.0, 240.0, 660.0], n),
        level_at_service_pct=rng.uniform(0, 100, n),
        p_overflow_next=rng.uniform(0, 0.05, n),
        p_overflow_after=rng.uniform(0, 0.3, n),
    )


def test_required_candidates_and_prizes():
    p = SelectParams(max_risk=0.05, candidate_min_pct=50)
    req = required_bins([0.01, 0.06, np.nan, 0.05], p)
    assert req.tolist() == [False, True, True, False]
    cand = candidate_bins([60.0, 90.0, 10.0, 49.0], req, p)
    assert cand.tolist() == [True, False, False, False]
    pr = prizes([100.0, 50.0, 50.0], [0.0, 0.0, 1.0], 10.0, SelectParams(prize_scale=2.0,
                                                                         risk_prize=3.0))
    np.testing.assert_allclose(pr, [20.0, 5.0, 35.0])


def test_select_params_validation(tmp_path):
    assert SelectParams.from_dict({}) == SelectParams()
    with pytest.raises(ValueError, match="unknown key 'risk'"):
        SelectParams.from_dict({"risk": 0.1})
    with pytest.raises(ValueError, match=r"max_risk must be in \(0, 1\), got 2.0; try 0.95"):
        SelectParams(max_risk=2.0)
    path = tmp_path / "s.toml"
    path.write_text("max_risk = true\n")
    with pytest.raises(ValueError, match="'max_risk' must be a number, got True"):
        SelectParams.from_file(path)


def test_a_bin_certain_to_overflow_is_always_in_the_plan():
    rng = np.random.default_rng(2)
    bins = day_bins(rng, 30)
    p_next = np.zeros(30)
    p_next[[3, 17]] = 1.0  # certain to overflow before the next opportunity
    bins = DayBins(bins.lonlat, bins.stream, bins.volume_l,
                   np.where(p_next > 0, 10.0, bins.level_at_service_pct),  # even when low
                   p_next, np.zeros(30))
    plan = plan_day(bins, small_fleet(), MaxIterations(50), SelectParams(candidate_min_pct=95))
    assert {3, 17} <= set(plan.bins.tolist())
    assert plan.violations == ()
    assert np.isnan(plan.accepted_risk[[3, 17]]).all()
    skipped = np.setdiff1d(np.arange(30), plan.bins)
    np.testing.assert_allclose(plan.accepted_risk[skipped], p_next[skipped])


def test_optional_bins_are_taken_when_worth_it():
    rng = np.random.default_rng(3)
    n = 40
    bins = DayBins(
        lonlat=np.column_stack([LON + rng.normal(0, 0.004, n), LAT + rng.normal(0, 0.002, n)]),
        stream=np.zeros(n, np.int64), volume_l=np.full(n, 240.0),
        level_at_service_pct=np.r_[np.full(20, 30.0), np.full(20, 90.0)],
        p_overflow_next=np.r_[np.zeros(20), np.zeros(10), np.ones(10)],
        p_overflow_after=np.zeros(n),
    )
    cheap = plan_day(bins, small_fleet(), MaxIterations(50),
                     SelectParams(candidate_min_pct=80, prize_scale=50.0))
    assert set(range(30, 40)) <= set(cheap.bins.tolist())  # the required ones
    assert set(range(20, 30)) <= set(cheap.bins.tolist())  # near, full, high prize: taken
    assert not set(range(20)) & set(cheap.bins.tolist())  # not offered at 30 %
    stingy = plan_day(bins, small_fleet(), MaxIterations(50),
                      SelectParams(candidate_min_pct=80, prize_scale=0.0, risk_prize=0.0))
    assert set(stingy.bins.tolist()) == set(range(30, 40))


def test_nothing_to_do_gives_an_empty_plan():
    rng = np.random.default_rng(4)
    bins = day_bins(rng, 5)
    bins = DayBins(bins.lonlat, bins.stream, bins.volume_l, np.zeros(5), np.zeros(5),
                   np.zeros(5))
    plan = plan_day(bins, small_fleet(), MaxIterations(10))
    assert plan.bins.size == 0 and plan.trucks_used == 0 and plan.distance_m == 0


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 35), risk=st.floats(0.01, 0.5))
def test_every_plan_passes_the_checker(seed, n, risk):
    rng = np.random.default_rng(seed)
    bins = day_bins(rng, n)
    bins = DayBins(bins.lonlat, bins.stream, bins.volume_l, bins.level_at_service_pct,
                   rng.uniform(0, 1, n), rng.uniform(0, 1, n))
    params = SelectParams(max_risk=risk, candidate_min_pct=40)
    plan = plan_day(bins, small_fleet(4), MaxIterations(20), params, seed=seed)
    assert plan.violations == ()
    if plan.result is not None:
        violations, _, _ = check_routes(
            plan.data, [(r.vehicle, list(r.visits)) for r in plan.result.routes])
        assert violations == []
    required = np.flatnonzero(bins.p_overflow_next > risk)
    assert set(required.tolist()) <= set(plan.bins.tolist())
    assert len(set(plan.bins.tolist())) == len(plan.bins)  # each bin at most once
    in_plan = np.zeros(n, bool)
    in_plan[plan.bins] = True
    assert np.isnan(plan.accepted_risk[in_plan]).all()
    assert not np.isnan(plan.accepted_risk[~in_plan]).any()
    assert np.all(plan.offered[plan.bins] | plan.required[plan.bins])




def test_stream_groups_join_streams_that_share_a_truck():
    cap = np.array([[1.0, 0, 0, 0, 0], [0, 2.0, 3.0, 0, 0], [0, 0, 1.0, 4.0, 0],
                    [0, 0, 0, 0, 5.0]])
    assert stream_groups(cap).tolist() == [0, 1, 1, 1, 2]


def test_lookahead_gathers_enough_stops_without_emptying_too_early():
    # stream 0: 40 bins at 10 %/d (with candidate_min_pct 80: 40 x 10 x 1.4 / 80 = 7 stops a
    # working day); stream 1: 5 bins at 4 %/d (0.35 a day); stream 2 shares a truck with 1
    rate = np.r_[np.full(40, 10.0), np.full(5, 4.0), np.full(5, np.nan)]
    stream = np.repeat([0, 1, 2], [40, 5, 5])
    group = np.array([0, 1, 1])
    p = SelectParams(trip_min_stops=14, lookahead_loss_pct=35, lookahead_options=(1, 2, 3, 5),
                     candidate_min_pct=80)
    # stream 0: 2 days give 14 stops; stream 1: 14 / 0.35 = 40 days wanted, but a median bin
    # may fill at most 35 %: 5 days (28 %); stream 2 has no rate: the shortest
    assert lookahead_days(rate, stream, group, p).tolist() == [2, 5, 1]
    p = SelectParams(trip_min_stops=14, lookahead_loss_pct=20, lookahead_options=(1, 2, 3, 5),
                     candidate_min_pct=80)
    assert lookahead_days(rate, stream, group, p).tolist() == [1, 3, 1]
    assert lookahead_days(rate, stream, group, SelectParams(trip_min_stops=0)).tolist() \
        == [1, 1, 1]


def test_a_bin_certain_to_overflow_makes_its_trip_and_is_in_the_plan():
    rng = np.random.default_rng(6)
    bins = day_bins(rng, 30)
    p_next = np.zeros(30)
    p_next[[4]] = 1.0  # certain to overflow before the next working day
    params = SelectParams(trip_risk=0.999)
    group = stream_groups(small_fleet().capacity_l)  # both streams share the trucks
    assert group.tolist() == [0, 0]
    trip = opened(p_next > params.trip_risk, bins.stream, group)
    assert trip.all()
    two = small_fleet(2, ("residual", "glass"))
    lone = Fleet(two.depot_lonlat, two.disposal_lonlat, two.disposal_accepts, two.unload_s,
                 two.truck_depot, np.array([[4000.0, 0], [0, 2000.0]]), two.shift_s,
                 two.streams)
    group = stream_groups(lone.capacity_l)
    assert group.tolist() == [0, 1]
    trip = opened(p_next > params.trip_risk, bins.stream, group)
    assert trip[4] and trip.tolist() == (bins.stream == bins.stream[4]).tolist()
    p_next[trip & (np.arange(30) != 4)] = 0.2  # at risk, but their stream makes a trip
    p_next[~trip] = 0.5  # at risk too, but no trip for their stream today
    b = DayBins(bins.lonlat, bins.stream, bins.volume_l, bins.level_at_service_pct, p_next,
                np.zeros(30))
    plan = plan_day(b, lone, MaxIterations(50), SelectParams(max_risk=0.1), available=trip)
    assert 4 in plan.bins and plan.violations == ()
    assert set(plan.bins.tolist()) == set(np.flatnonzero(trip).tolist())
    np.testing.assert_allclose(plan.accepted_risk[~trip], 0.5)  # left out, risk reported


def test_opportunities_open_a_trip_only_for_a_group_at_risk():
    # streams 0 and 1 share a truck (group 0), stream 2 has its own (group 1)
    stream = np.array([0, 0, 1, 1, 2, 2])
    group = np.array([0, 0, 1])
    look = np.array([3, 3, 2, 2, 5, 5])
    params = SelectParams(trip_risk=0.9)
    # a stream-1 bin at 0.95 before the next working day sends out the group's truck: every
    # bin of streams 0 and 1 then looks 3 or 2 working days ahead; stream 2 (0.8) waits
    trip, k_next, k_after = opportunities([0.1, 0.0, 0.95, 0.2, 0.8, 0.0], stream, group,
                                          look, params)
    assert trip.tolist() == [True, True, True, True, False, False]
    assert k_next.tolist() == [3, 3, 2, 2, 1, 1]
    assert k_after.tolist() == [6, 6, 4, 4, 6, 6]
    # at the trip risk exactly: no trip; a bin without a forecast (NaN) always sends one
    trip, k_next, _ = opportunities([0.9, 0.0, 0.0, 0.0, np.nan, 0.0], stream, group, look,
                                    params)
    assert trip.tolist() == [False, False, False, False, True, True]
    assert k_next.tolist() == [1, 1, 1, 1, 5, 5]


def test_select_params_lookahead_from_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("lookahead_options = [1, 3]\nlookahead_loss_pct = 20\ntrip_risk = 0.9\n")
    p = SelectParams.from_file(path)
    assert p.lookahead_options == (1, 3) and p.lookahead_loss_pct == 20.0
    assert p.trip_risk == 0.9
    with pytest.raises(ValueError, match="lookahead_options must be whole numbers"):
        SelectParams(lookahead_options=(0, 2))
    with pytest.raises(ValueError, match="lookahead_loss_pct must be >= 0"):
        SelectParams(lookahead_loss_pct=-1.0)
    with pytest.raises(ValueError, match=r"trip_risk must be in \(0, 1\)"):
        SelectParams(trip_risk=1.0)
    with pytest.raises(ValueError, match="trip_min_stops must be >= 0"):
        SelectParams(trip_min_stops=-1.0)
