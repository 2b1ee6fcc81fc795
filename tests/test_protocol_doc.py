"""docs/protocol.md and smartbins/protocol.py must say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smartbins import codes, storage
from smartbins import protocol as p

DOC = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _row(spec: p.FieldSpec) -> str:
    rng = "" if spec.lo is None else f"{_num(spec.lo)} … {_num(spec.hi)}"
    if spec.kind == "str" and spec.lo is not None:
        rng += " chars"
    required = "yes" if spec.required else "no"
    return f"| `{spec.key}` | {spec.kind} | {required} | {rng} | {spec.unit} | {spec.doc} |"


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", DOC, re.S | re.M)
    assert match, f"docs/protocol.md has no section '## {title}'"
    return match.group(1)


@pytest.mark.parametrize(
    ("title", "specs"),
    [
        ("The reading", p.READING_FIELDS),
        ("Status and last will", p.STATUS_FIELDS),
        ("Config (retained)", p.CONFIG_FIELDS),
        ("End-to-end acknowledgement", p.ACK_FIELDS),
    ],
)
def test_field_tables_match_the_module(title: str, specs: tuple[p.FieldSpec, ...]) -> None:
    table = _section(title).split("| key | type | required |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows == [_row(s) for s in specs]


def test_every_reason_flag_error_code_and_fraction_is_documented() -> None:
    for reason in p.Reason:
        assert f"| `{reason.value}` |" in DOC, reason
    for flag in p.Flag:
        assert f"| `{flag.name}` | 0x{flag.value:02x} |" in DOC, flag
    for code in p.SensorError:
        assert f"| {code.value} | `{code.name}` |" in DOC, code
    for fraction in codes.FRACTIONS.values():
        assert f"| `{fraction.code}` | {fraction.name_da} |" in DOC, fraction
    for stream in codes.COMBINED_STREAMS:
        assert f"`{stream}`" in DOC


def test_limits_and_topics_are_documented() -> None:
    for number in (p.MAX_READING_BYTES, p.MAX_BATCH_BYTES):
        assert f"{number:,}" in DOC
    assert f"**{p.MAX_BATCH_READINGS} readings**" in DOC
    assert f"most **{p.DEVICE_BATCH_READINGS}**" in DOC
    for kind in (*p.UP_KINDS, *p.DOWN_KINDS):
        assert f"`{p.topic_for(kind, '<device>')}`" in DOC
    assert f"`{p.shared_subscription()}`" in DOC
    assert f"measurement **`{storage.MEASUREMENT}`**" in DOC
    assert f"measurement **`{storage.DEADLETTER_MEASUREMENT}`**" in DOC
