"""Fractions and streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartbins.codes import (
    COMBINED_STREAMS,
    FRACTIONS,
    STREAMS,
    StreamError,
    parse_stream,
    stream_fractions,
)


def test_the_ten_danish_fractions() -> None:
    assert list(FRACTIONS) == [
        "food",
        "paper",
        "cardboard",
        "glass",
        "metal",
        "plastic",
        "cartons",
        "textiles",
        "hazardous",
        "residual",
    ]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("glass", "glass"),
        ("Cardboard+Paper", "paper+cardboard"),
        ("metal+glass", "glass+metal"),
        ("cartons + metal + plastic", "metal+plastic+cartons"),
    ],
)
def test_streams_have_one_canonical_spelling(text: str, canonical: str) -> None:
    assert parse_stream(text) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("glas", "unknown fraction 'glas'"),
        ("food+residual", "may not share a bin"),
        ("paper+paper", "named twice"),
        ("", "unknown fraction ''"),
    ],
)
def test_bad_streams_say_why(text: str, message: str) -> None:
    with pytest.raises(StreamError, match=message):
        parse_stream(text)


@given(st.sampled_from(sorted(STREAMS)), st.randoms(use_true_random=False))
def test_any_order_of_an_allowed_stream_parses_to_itself(stream: str, rnd) -> None:
    parts = stream.split("+")
    rnd.shuffle(parts)
    assert parse_stream("+".join(parts)) == stream
    assert "+".join(stream_fractions(stream)) == stream


def test_combined_streams_are_made_of_known_fractions() -> None:
    for s in COMBINED_STREAMS:
        assert all(f in FRACTIONS for f in s.split("+"))
