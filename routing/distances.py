"""Distance and duration matrices from coordinates, vectorised with numpy.

Three conventions are offered because the solver is used on two kinds of data:

* CVRPLIB instances state their costs with TSPLIB's rounding of EUC_2D
  (``d = floor(sqrt(dx^2 + dy^2) + 0.5)``); matching it exactly is what makes
  gaps to the best-known solutions meaningful.
* Real municipalities come as WGS84 coordinates; the great-circle (haversine)
  distance times a detour factor is a cheap, well-behaved stand-in for road
  distance when no road matrix is supplied.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius [m] (IUGG)."""


def euclidean(xy: ArrayLike) -> NDArray[np.float64]:
    """Plain Euclidean distance matrix [coordinate units] between rows of ``xy`` (L, 2)."""
    pts = np.asarray(xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"xy must have shape (L, 2), got {pts.shape}; pass one (x, y) per row")
    diff = pts[:, None, :] - pts[None, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))


def euclidean_nint(xy: ArrayLike) -> NDArray[np.float64]:
    """TSPLIB EUC_2D distances: Euclidean rounded to the nearest integer (nint).

    Returned as float64 holding exact integers, so sums stay exact and the
    solver needs only one matrix dtype.
    """
    return np.floor(euclidean(xy) + 0.5)


def haversine_m(lat_deg: ArrayLike, lon_deg: ArrayLike, detour_factor: float = 1.3) -> NDArray[
    np.float64
]:
    """Great-circle distance [m] between all pairs of points, times ``detour_factor`` [-].

    ``detour_factor`` approximates road distance over crow-flight distance; 1.3 is
    a common value for urban road networks.
    """
    if not detour_factor >= 1.0:
        raise ValueError(
            f"detour_factor must be >= 1 (road distance is never shorter than the great "
            f"circle), got {detour_factor}; use 1.0 for crow-flight distances"
        )
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"lat and lon must be 1-D of equal length, got {lat.shape}, {lon.shape}")
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))) * detour_factor


def durations_s(distance_m: NDArray[np.float64], speed_mps: float) -> NDArray[np.float64]:
    """Driving durations [s] for distances [m] at a constant speed [m/s]."""
    if not speed_mps > 0:
        raise ValueError(f"speed_mps must be > 0, got {speed_mps}; 25 km/h is 6.94 m/s")
    return distance_m / speed_mps
