"""Tenant isolation, generated from the app's routes: a token of municipality A neither sees
nor changes B's data anywhere (open data aside). A new route is covered without editing this
test; a new path parameter needs an id in the world (conftest.py), which the test asks for."""

from __future__ import annotations

import sqlite3

from api_world import World
from routes_catalogue import PREFIX, WRITE_METHODS, fill, request_kwargs, routes


def dump(path: str) -> list[tuple[str, list[tuple[object, ...]]]]:
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [(t, sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr))
                for t in sorted(tables)]
    finally:
        db.close()


def b_markers(w: World, url: str = "", body: object = None) -> list[str]:
    """B's ids and names, except those the request itself names (an answer may echo them)."""
    asked = url + repr(body)
    # numbers (and a stop's position in a plan): they occur in any answer by chance
    skip = ("municipality_id", "alert_id", "index")
    return [v for k, v in w.ids["b"].items() if k not in skip and v not in asked] + [
        "Kommune B"]


def test_a_token_of_a_neither_sees_nor_changes_b(fresh_world: World) -> None:
    w = fresh_world
    before = dump(str(w.settings.registry.path))
    tenant_routes = [(m, p) for m, p in routes(w.client.app) if p.startswith("/municipalities/")]
    assert len(tenant_routes) >= 30
    failures = []
    for who in ("a-admin", "a-viewer"):
        for method, path in tenant_routes:
            kwargs = (request_kwargs(method, path, w.ids["b"])
                      if method.lower() in WRITE_METHODS else {})
            headers = {**kwargs.pop("headers", {}), **w.auth(who)}
            # B's municipality, B's objects.
            url = PREFIX + fill(path, w.ids["b"])
            r = w.client.request(method, url, headers=headers, **kwargs)
            if r.status_code != 404 or any(m in r.text for m in b_markers(w, url, kwargs)):
                failures.append((who, method, url, r.status_code, r.text[:150]))
            # A's municipality, B's objects (only routes that name an object).
            if path.count("{") > 1:
                kwargs = (request_kwargs(method, path, w.ids["a"])
                          if method.lower() in WRITE_METHODS else {})
                headers = {**kwargs.pop("headers", {}), **w.auth(who)}
                mixed = {**w.ids["b"], "municipality_id": "0101"}
                url = PREFIX + fill(path, mixed)
                r = w.client.request(method, url, headers=headers, **kwargs)
                if r.status_code not in (403, 404) or any(
                    m in r.text for m in b_markers(w, url, kwargs)
                ):
                    failures.append((who, method, url, r.status_code, r.text[:150]))
    assert not failures, "\n".join(map(str, failures))
    assert dump(str(w.settings.registry.path)) == before


def test_reads_of_a_show_nothing_of_b(world: World) -> None:
    w = world
    for method, path in routes(w.client.app):
        if method != "GET" or path.startswith("/open/"):
            continue
        r = w.client.get(PREFIX + fill(path, w.ids["a"]), headers=w.auth("root" if path ==
                         "/municipalities" else "a-admin"))
        assert r.status_code == 200, (path, r.text)
        if path != "/municipalities":
            leaked = [m for m in b_markers(w) if m in r.text]
            assert not leaked, (path, leaked)


def test_bodies_cannot_reach_into_b(fresh_world: World) -> None:
    w, h, a = fresh_world, fresh_world.auth("a-admin"), f"{PREFIX}/municipalities/0101"
    before = dump(str(w.settings.registry.path))
    b = w.ids["b"]
    attempts = [
        ("post", f"{a}/bins", {"id": "x", "site_id": b["site_id"], "stream": "glass",
                               "volume_l": 1}),
        ("patch", f"{a}/bins/a-bin-4", {"site_id": b["site_id"]}),
        ("post", f"{a}/trucks", {"id": "x", "depot_id": b["depot_id"],
                                 "compartments": [{"stream": "glass", "capacity_l": 1}]}),
        ("patch", f"{a}/trucks/a-truck-1", {"depot_id": b["depot_id"]}),
        ("post", f"{a}/devices", {"id": "x-dev", "bin_id": b["free_bin_id"]}),
        ("post", f"{a}/devices/{w.ids['a']['device_id']}/move", {"bin_id": b["free_bin_id"]}),
    ]
    for method, url, body in attempts:
        r = w.client.request(method.upper(), url, json=body, headers=h)
        assert r.status_code in (400, 404), (url, r.status_code, r.text)
    r = w.client.post(f"{a}/bins/import", headers={**h, "Content-Type": "text/csv"},
                      content=f"id,site_id,stream,volume_l\nx,{b['site_id']},glass,240\n".encode())
    assert r.status_code == 400
    assert r.json()["problems"][0]["field"] == "site_id"
    assert dump(str(w.settings.registry.path)) == before
