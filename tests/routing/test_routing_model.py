"""Model compilation, validation messages and the feasibility checker's rules."""

from __future__ import annotations

import numpy as np
import pytest

from routing.distances import euclidean_nint, haversine_m
from routing.feasibility import check_routes, simulate_route
from routing.model import Model, ProblemData


def test_haversine_one_degree_of_latitude():
    d = haversine_m([0.0, 1.0], [0.0, 0.0], detour_factor=1.0)
    assert d[0, 1] == pytest.approx(111_195, rel=1e-3)
    assert haversine_m([0.0, 1.0], [0.0, 0.0])[0, 1] == pytest.approx(1.3 * d[0, 1])


def test_detour_factor_below_one_is_refused():
    with pytest.raises(ValueError, match="detour_factor must be >= 1"):
        haversine_m([0.0], [0.0], detour_factor=0.5)


def test_nint_rounds_half_up():
    assert euclidean_nint([[0, 0], [0.5, 0], [1.5, 0]])[0].tolist() == [0.0, 1.0, 2.0]


def test_model_compiles_location_order(two_chamber_city):
    data = two_chamber_city.data()
    assert (data.num_depots, data.num_stops, data.num_disposal) == (1, 8, 2)
    assert data.num_vehicles == 2 and data.num_streams == 2
    assert data.distance.shape == (11, 11)
    assert data.disposal_accepts.tolist() == [[True, False], [False, True]]
    assert data.duration_s[0, 1] == pytest.approx(data.distance[0, 1] / (25 / 3.6))
    assert not data.is_plain_cvrp


def test_time_window_open_after_close_is_named():
    m = Model()
    with pytest.raises(ValueError, match="tw_early_s=10 is after tw_late_s=5"):
        m.add_stop(0, 0, demand=1, tw_early_s=10, tw_late_s=5)


def test_stream_without_disposal_site_is_refused():
    m = Model(streams=("residual", "glass"))
    m.add_depot(0, 0)
    m.add_stop(1, 1, demand=[0, 1])
    m.add_disposal_site(2, 2, accepts=[0])
    m.add_vehicle_type(capacity=[5, 5])
    with pytest.raises(ValueError, match="stream 'glass' has demand but no disposal site"):
        m.data()


def test_checker_unload_empties_only_accepted_streams(two_chamber_city):
    data = two_chamber_city.data()
    stops = [data.stop_location(i) for i in range(8)]
    site_res, site_glass = data.disposal_location(0), data.disposal_location(1)
    # 3 stops of residual (12 > 10) without unloading: over capacity.
    rep = simulate_route(data, 0, [*stops[:3], site_res, site_glass])
    assert any("'residual' holds 12" in v for v in rep.violations)
    # Unload residual after 2 stops: fine; glass never exceeds 6 here.
    rep = simulate_route(data, 0, [*stops[:2], site_res, stops[2], site_res, site_glass])
    assert rep.violations == ()
    assert rep.trips == ((0, 1), (2,), ())
    # Ending with glass still on board is a violation when disposal sites exist.
    rep = simulate_route(data, 0, [stops[1], site_res])
    assert any("returns to the depot with load" in v for v in rep.violations)


def test_checker_reports_missing_and_duplicate_stops(ok_small):
    violations, _, _ = check_routes(ok_small, [(0, [1, 2]), (1, [2, 3])])
    assert "stop 1 is visited 2 times" in violations
    assert "required stop 3 is not visited" in violations


def test_checker_shift_and_time_window():
    m = Model()
    m.add_depot(0, 0)
    m.add_stop(100, 0, demand=1, service_s=50, tw_early_s=0, tw_late_s=5)
    m.add_vehicle_type(capacity=5, speed_mps=1.0, shift_duration_s=200)
    data = m.data()
    rep = simulate_route(data, 0, [1])
    assert any("after its window closes" in v for v in rep.violations)
    assert any("shift lasts 250.0 s > shift_duration_s 200.0" in v for v in rep.violations)


def test_problem_data_shape_errors_name_the_field(ok_small):
    with pytest.raises(ValueError, match="service_s must have shape"):
        ProblemData(**{**ok_small.__dict__, "service_s": np.zeros(3)})
