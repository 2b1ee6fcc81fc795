"""RoutingParams validation and TOML loading; stopping criteria with an injected clock."""

from __future__ import annotations

import pytest

from routing.params import RoutingParams
from routing.stop import FirstOf, MaxIterations, MaxRuntime


def test_empty_file_gives_the_defaults(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert RoutingParams.from_file(path) == RoutingParams()


def test_toml_round_trip(tmp_path):
    params = RoutingParams(num_neighbours=30, max_removed=40, blink_rate=0.02)
    path = tmp_path / "params.toml"
    path.write_text("\n".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                               for k, v in params.to_dict().items()))
    assert RoutingParams.from_file(path) == params


def test_unknown_key_is_an_error(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text("num_neighbors = 20\n")
    with pytest.raises(ValueError, match="unknown key 'num_neighbors'"):
        RoutingParams.from_file(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_neighbours": 0}, "num_neighbours must be >= 1, got 0"),
        ({"min_removed": 10, "max_removed": 5}, r"max_removed \(5\) must be >= min_removed"),
        ({"blink_rate": 1.5}, r"blink_rate must be in \[0, 1\), got 1.5"),
        ({"start_temperature": 0.001, "end_temperature": 0.01},
         "need start_temperature >= end_temperature"),
    ],
)
def test_bad_values_name_field_value_and_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RoutingParams(**kwargs)


class FakeClock:
    """A clock that advances only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_max_runtime_uses_the_injected_clock():
    clock = FakeClock()
    stop = MaxRuntime(5.0, clock=clock)
    stop.start()
    assert not stop(0.0, 0)
    clock.now += 2.5
    assert stop.fraction_done(0) == pytest.approx(0.5)
    assert stop.seconds_left() == pytest.approx(2.5)
    clock.now += 2.5
    assert stop(0.0, 0)


def test_max_iterations_and_first_of():
    clock = FakeClock()
    stop = FirstOf(MaxIterations(10), MaxRuntime(60.0, clock=clock))
    stop.start()
    assert not stop(0.0, 9)
    assert stop(0.0, 10)
    assert stop.iterations_left(4) == 6
    clock.now += 60
    assert stop(0.0, 0)


def test_negative_limits_are_refused():
    with pytest.raises(ValueError, match="max_runtime_s must be >= 0"):
        MaxRuntime(-1)
    with pytest.raises(ValueError, match="max_iterations must be >= 0"):
        MaxIterations(-1)
