"""Injection attempts in every query and path parameter of every operation: a 4xx, and
nothing changed in the registry or in InfluxDB."""

from __future__ import annotations

import urllib.parse

from api_world import World
from routes_catalogue import PREFIX, fill
from test_api_tenants import dump

PAYLOADS = (
    "' OR '1'='1",
    "0101' --",
    '" OR 1=1 --',
    "x'; DROP MEASUREMENT reading; --",
    "1; DELETE FROM bins",
    "glass) OR (1=1",
    "/../../etc/passwd",
    "$(reboot)",
    '{"$gt": ""}',
    "x\nSELECT * FROM reading",
    "x%00",
)


def count_readings(w: World) -> int:
    c = w.influx.client(w.database)
    try:
        series = c.query('SELECT count(seq) FROM "reading"')
    finally:
        c.close()
    return int(series[0]["values"][0][1])


def test_injection_in_every_parameter_is_refused(fresh_world: World) -> None:
    w = fresh_world
    registry_before = dump(str(w.settings.registry.path))
    readings_before = count_readings(w)
    h = w.auth("a-admin")
    tried = 0
    failures = []
    for path, ops in w.client.app.openapi()["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters", [])
            for param in params:
                for payload in PAYLOADS:
                    ids = {**w.ids["a"]}
                    query = {}
                    if param["in"] == "query":
                        query[param["name"]] = payload
                    elif param["in"] == "path":
                        ids[param["name"]] = urllib.parse.quote(payload, safe="")
                    else:
                        continue
                    url = fill(path.removeprefix(PREFIX), ids)
                    url = (PREFIX if path.startswith(PREFIX) else "") + url
                    r = w.client.request(method.upper(), url, params=query, headers=h)
                    tried += 1
                    if not 400 <= r.status_code < 500:
                        failures.append((method, path, param["name"], payload, r.status_code))
    assert tried > 300
    assert not failures, "\n".join(map(str, failures))
    assert dump(str(w.settings.registry.path)) == registry_before
    assert count_readings(w) == readings_before
