"""Waste fractions and streams: the one place their codes are defined.

A *fraction* is one of the ten Danish household fractions of the waste order
(affaldsbekendtgørelsen). A *stream* is what one bin holds and one truck compartment carries: one
fraction, or one of the combinations the order allows to be collected together. Streams are
written as fraction codes joined by ``+`` in the canonical order of :data:`FRACTIONS`, so that
``"cardboard+paper"`` and ``"paper+cardboard"`` name the same stream and compare equal after
:func:`parse_stream`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fraction:
    code: str
    name_da: str
    name_en: str
    #: EU List of Waste code for the municipal fraction, where one code fits (FIWARE's
    #: ``storedWasteCode``); hazardous household waste spans many codes, so it has none.
    ewc: str | None


FRACTIONS: dict[str, Fraction] = {
    f.code: f
    for f in (
        Fraction("food", "madaffald", "food waste", "20 01 08"),
        Fraction("paper", "papir", "paper", "20 01 01"),
        Fraction("cardboard", "pap", "cardboard", "20 01 01"),
        Fraction("glass", "glas", "glass", "20 01 02"),
        Fraction("metal", "metal", "metal", "20 01 40"),
        Fraction("plastic", "plast", "plastic", "20 01 39"),
        Fraction("cartons", "mad- og drikkekartoner", "food and drink cartons", "15 01 05"),
        Fraction("textiles", "tekstilaffald", "textiles", "20 01 11"),
        Fraction("hazardous", "farligt affald", "hazardous waste", None),
        Fraction("residual", "restaffald", "residual waste", "20 03 01"),
    )
}

_ORDER = {code: i for i, code in enumerate(FRACTIONS)}

#: Combinations that may share one bin (besides every single fraction), canonical spelling.
COMBINED_STREAMS: frozenset[str] = frozenset(
    {
        "paper+cardboard",
        "glass+metal",
        "metal+plastic",
        "plastic+cartons",
        "metal+plastic+cartons",
    }
)

#: Every stream a bin may hold, canonical spelling.
STREAMS: frozenset[str] = frozenset(FRACTIONS) | COMBINED_STREAMS


class StreamError(ValueError):
    """A stream name that is not one fraction or an allowed combination."""


def parse_stream(text: str) -> str:
    """Return the canonical spelling of a stream, or raise :class:`StreamError` saying why."""
    parts = [p.strip() for p in text.strip().lower().split("+")]
    unknown = [p for p in parts if p not in FRACTIONS]
    if unknown:
        raise StreamError(
            f"stream {text!r}: unknown fraction {unknown[0]!r}; "
            f"use one of {', '.join(FRACTIONS)} joined by '+'"
        )
    if len(set(parts)) != len(parts):
        raise StreamError(f"stream {text!r}: a fraction is named twice")
    canonical = "+".join(sorted(parts, key=_ORDER.__getitem__))
    if canonical not in STREAMS:
        raise StreamError(
            f"stream {text!r}: these fractions may not share a bin; allowed combinations are "
            f"{', '.join(sorted(COMBINED_STREAMS))}"
        )
    return canonical


def stream_fractions(stream: str) -> tuple[str, ...]:
    """The fraction codes a (canonical or not) stream is made of."""
    return tuple(parse_stream(stream).split("+"))
