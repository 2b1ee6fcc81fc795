"""CVRPLIB / TSPLIB I/O: read ``.vrp`` instances and ``.sol`` solutions, write ``.sol``.

The only I/O in the routing package lives here. Distances use TSPLIB's EUC_2D
rounding (nint), which is the convention of every best-known solution in CVRPLIB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from routing.distances import euclidean_nint
from routing.model import ProblemData


class CvrplibFormatError(ValueError):
    """A ``.vrp`` or ``.sol`` file that does not follow the format; says the line and why."""


@dataclass(frozen=True)
class CvrpInstance:
    """A parsed CVRPLIB instance. Location 0 is the depot, 1..N are customers."""

    name: str
    coords: NDArray[np.float64]
    demand: NDArray[np.float64]
    capacity: float
    min_vehicles: int | None

    @property
    def num_customers(self) -> int:
        """N: customers (DIMENSION - 1)."""
        return int(self.coords.shape[0] - 1)

    def distance(self) -> NDArray[np.float64]:
        """EUC_2D distance matrix with TSPLIB nint rounding."""
        return euclidean_nint(self.coords)

    def to_data(self, num_vehicles: int | None = None) -> ProblemData:
        """Compile to ``ProblemData``; default fleet ceil(1.5 k) (k from the name ``-k``)."""
        if num_vehicles is None:
            k = self.min_vehicles or max(1, math.ceil(self.demand.sum() / self.capacity))
            num_vehicles = math.ceil(1.5 * k)
        return ProblemData.cvrp(self.distance(), self.demand[1:], self.capacity, num_vehicles)


def _min_vehicles_from_name(name: str) -> int | None:
    for part in name.split("-"):
        if part.startswith("k") and part[1:].isdigit():
            return int(part[1:])
    return None


def read_vrp(path: str | Path) -> CvrpInstance:
    """Read a CVRPLIB ``.vrp`` file with EUC_2D coordinates and a single depot."""
    path = Path(path)
    lines = path.read_text().splitlines()
    header: dict[str, str] = {}
    coords: dict[int, tuple[float, float]] = {}
    demand: dict[int, float] = {}
    depots: list[int] = []
    section = None
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "EOF":
            break
        if line.endswith("_SECTION"):
            section = line
            continue
        if section is None:
            if ":" not in line:
                raise CvrplibFormatError(f"{path}:{lineno}: expected 'KEY : value', got {line!r}")
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
            continue
        parts = line.split()
        try:
            if section == "NODE_COORD_SECTION":
                coords[int(parts[0])] = (float(parts[1]), float(parts[2]))
            elif section == "DEMAND_SECTION":
                demand[int(parts[0])] = float(parts[1])
            elif section == "DEPOT_SECTION":
                if int(parts[0]) == -1:
                    section = "done"
                else:
                    depots.append(int(parts[0]))
        except (IndexError, ValueError) as exc:
            msg = f"{path}:{lineno}: cannot parse {line!r} in {section}"
            raise CvrplibFormatError(msg) from exc
    if header.get("EDGE_WEIGHT_TYPE", "EUC_2D") != "EUC_2D":
        raise CvrplibFormatError(
            f"{path}: EDGE_WEIGHT_TYPE {header['EDGE_WEIGHT_TYPE']!r} not supported; only EUC_2D"
        )
    try:
        dim = int(header["DIMENSION"])
        capacity = float(header["CAPACITY"])
    except KeyError as exc:
        raise CvrplibFormatError(f"{path}: header lacks {exc.args[0]}") from exc
    if sorted(coords) != list(range(1, dim + 1)) or sorted(demand) != list(range(1, dim + 1)):
        raise CvrplibFormatError(
            f"{path}: DIMENSION is {dim} but {len(coords)} coordinates and {len(demand)} demands "
            f"are given (nodes must be numbered 1..{dim})"
        )
    if depots not in ([], [1]):
        raise CvrplibFormatError(f"{path}: only depot 1 is supported, got {depots}")
    xy = np.array([coords[i] for i in range(1, dim + 1)])
    dem = np.array([demand[i] for i in range(1, dim + 1)])
    name = header.get("NAME", path.stem)
    return CvrpInstance(name, xy, dem, capacity, _min_vehicles_from_name(name))


def read_sol(path: str | Path) -> tuple[list[list[int]], float | None]:
    """Read a ``.sol`` file: routes of customer numbers (1..N, depot 0 omitted) and ``Cost``."""
    path = Path(path)
    routes: list[list[int]] = []
    cost = None
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if line.lower().startswith("route"):
            _, _, rest = line.partition(":")
            try:
                routes.append([int(x) for x in rest.split()])
            except ValueError as exc:
                raise CvrplibFormatError(f"{path}:{lineno}: bad route {line!r}") from exc
        elif line.lower().startswith("cost"):
            cost = float(line.split()[1])
    return routes, cost


def write_sol(path: str | Path, routes: list[list[int]], cost: float) -> None:
    """Write routes of customer numbers (1..N) in CVRPLIB ``.sol`` format."""
    lines = []
    nonempty = [r for r in routes if r]
    for i, route in enumerate(nonempty, start=1):
        lines.append(f"Route #{i}: " + " ".join(str(int(c)) for c in route))
    lines.append(f"Cost {round(cost) if float(cost).is_integer() else cost}")
    Path(path).write_text("\n".join(lines) + "\n")


def solution_cost(distance: NDArray[np.float64], routes: list[list[int]]) -> float:
    """Total distance of routes (customer = location index), each starting/ending at 0."""
    total = 0.0
    for route in routes:
        if route:
            seq = np.concatenate(([0], np.asarray(route, dtype=np.int64), [0]))
            total += float(distance[seq[:-1], seq[1:]].sum())
    return total
