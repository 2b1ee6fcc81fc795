"""Prometheus metrics: requests and latency per route (the route's path template, so that
/bins/{bin_id} is one series, not one per bin), as a plain ASGI middleware (no dependency).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from typing import Any

#: Latency histogram buckets [s].
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.counts: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            key = (method, route)
            i = bisect.bisect_left(BUCKETS, seconds)
            if i < len(BUCKETS):
                self.buckets[key][i] += 1
            self.sums[key] += seconds
            self.counts[key] += 1

    def render(self) -> str:
        out = [
            "# HELP smartbins_api_requests_total Requests answered, by method, route and status.",
            "# TYPE smartbins_api_requests_total counter",
        ]
        with self._lock:
            for (m, r, s), n in sorted(self.requests.items()):
                labels = f'method="{m}",route="{_esc(r)}",status="{s}"'
                out.append(f"smartbins_api_requests_total{{{labels}}} {n}")
            out += [
                "# HELP smartbins_api_request_seconds Time to answer, by method and route.",
                "# TYPE smartbins_api_request_seconds histogram",
            ]
            for (m, r), counts in sorted(self.buckets.items()):
                labels = f'method="{m}",route="{_esc(r)}"'
                total = 0
                for le, c in zip(BUCKETS, counts, strict=True):
                    total += c
                    out.append(
                        f'smartbins_api_request_seconds_bucket{{{labels},le="{le}"}} {total}'
                    )
                n = self.counts[(m, r)]
                out.append(f'smartbins_api_request_seconds_bucket{{{labels},le="+Inf"}} {n}')
                out.append(f"smartbins_api_request_seconds_sum{{{labels}}} {self.sums[(m, r)]:.6f}")
                out.append(f"smartbins_api_request_seconds_count{{{labels}}} {n}")
        return "\n".join(out) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsMiddleware:
    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(
                scope.get("method", ""),
                route_template(scope),
                status[0],
                time.perf_counter() - start,
            )


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's full path template. A route of an included router knows its path
    without the include prefix; the prefix has no parameters, so it is the request path's
    leading segments before the route's own."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not path:
        return "(unmatched)"
    actual = scope.get("path", "").split("/")
    own = path.split("/")
    return "/".join(actual[: max(len(actual) - len(own) + 1, 0)]) + path
