"""The API's basic shape: health, metrics, OpenAPI, registry CRUD and its error answers."""

from __future__ import annotations

from api_world import World

API = "/api/v1/municipalities"


def test_health_docs_and_metrics(world: World) -> None:
    c = world.client
    assert c.get("/healthz").json() == {"status": "ok", "registry": "ok", "influxdb": "ok"}
    assert c.get("/docs").status_code == 200
    assert "/api/v1/municipalities/{municipality_id}/bins" in c.get("/openapi.json").json()["paths"]
    c.get(f"{API}/0101/bins", headers=world.auth("a-viewer"))
    text = c.get("/metrics").text
    assert (
        'smartbins_api_requests_total{method="GET",'
        'route="/api/v1/municipalities/{municipality_id}/bins",status="200"}'
    ) in text
    assert "smartbins_api_request_seconds_bucket{" in text


def test_a_token_lists_only_its_municipalities(world: World) -> None:
    c = world.client
    assert [m["id"] for m in c.get(API, headers=world.auth("a-viewer")).json()] == ["0101"]
    assert [m["id"] for m in c.get(API, headers=world.auth("root")).json()] == ["0101", "0147"]


def test_site_crud_and_errors_name_the_field(fresh_world: World) -> None:
    c, h = fresh_world.client, fresh_world.auth("a-planner")
    r = c.post(
        f"{API}/0101/sites",
        json={"id": "s-new", "lat": 55.7, "lon": 12.5, "address": "Gade 1"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["address"] == "Gade 1"
    r = c.post(f"{API}/0101/sites", json={"id": "s-new", "lat": 55.7, "lon": 12.5}, headers=h)
    assert (r.status_code, r.json()) == (409, {"detail": "site 's-new' exists already"})
    r = c.post(f"{API}/0101/sites", json={"id": "s-2", "lat": 95, "lon": 12.5}, headers=h)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "lat"]
    # NaN is not JSON, but Python clients send it: a 422 naming the field, not a 500
    r = c.post(f"{API}/0101/sites", content=b'{"id": "s-2", "lat": NaN, "lon": 12.5}',
               headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "lat"]
    assert r.json()["detail"][0]["input"] == "nan"
    r = c.post(
        f"{API}/0101/sites", json={"id": "s-2", "lat": 5, "lon": 1, "colour": "x"}, headers=h
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "colour"]
    r = c.patch(f"{API}/0101/sites/s-new", json={"name": "Ny"}, headers=h)
    assert r.json()["name"] == "Ny" and r.json()["address"] == "Gade 1"
    r = c.delete(f"{API}/0101/sites/a-site-1", headers=h)
    assert (r.status_code, r.json()) == (
        409,
        {"detail": "site 'a-site-1' still has bins; retire or move them first"},
    )
    assert c.delete(f"{API}/0101/sites/s-new", headers=h).status_code == 204
    assert c.get(f"{API}/0101/sites/s-new", headers=h).status_code == 404


def test_bins_validate_stream_and_site(fresh_world: World) -> None:
    c, h = fresh_world.client, fresh_world.auth("a-planner")
    body = {"id": "nb", "site_id": "a-site-1", "stream": "food+glass", "volume_l": 240}
    r = c.post(f"{API}/0101/bins", json=body, headers=h)
    assert r.status_code == 400
    assert "stream 'food+glass': these fractions may not share a bin" in r.json()["detail"]
    r = c.post(
        f"{API}/0101/bins", json={**body, "stream": "glass", "site_id": "b-site-1"}, headers=h
    )
    assert (r.status_code, r.json()["detail"]) == (
        400,
        "bin 'nb': site_id 'b-site-1': no such site here",
    )
    r = c.post(f"{API}/0101/bins", json={**body, "stream": "Glass"}, headers=h)
    assert r.status_code == 201 and r.json()["stream"] == "glass"
    r = c.get(f"{API}/0101/bins", params={"stream": "glass"}, headers=h)
    assert sorted(b["id"] for b in r.json()) == ["a-bin-2", "nb"]
    r = c.get(f"{API}/0101/bins", params={"area": "center"}, headers=h)
    assert sorted(b["id"] for b in r.json()) == ["a-bin-1", "a-bin-3"]
    r = c.delete(f"{API}/0101/bins/a-bin-1", headers=h)
    assert r.status_code == 409 and "still has device" in r.json()["detail"]
    assert c.delete(f"{API}/0101/bins/nb", headers=h).json()["retired_ms"] is not None


def test_trucks_and_disposal_sites(fresh_world: World) -> None:
    c, h = fresh_world.client, fresh_world.auth("a-planner")
    r = c.post(
        f"{API}/0101/trucks",
        headers=h,
        json={
            "id": "t2",
            "depot_id": "a-depot-1",
            "fuel": "electric",
            "compartments": [
                {"stream": "glass", "capacity_l": 8000},
                {"stream": "metal+plastic", "capacity_l": 8000},
            ],
        },
    )
    assert r.status_code == 201, r.text
    assert [x["stream"] for x in r.json()["compartments"]] == ["glass", "metal+plastic"]
    r = c.post(
        f"{API}/0101/trucks",
        headers=h,
        json={
            "id": "t3",
            "depot_id": "b-depot-1",
            "compartments": [{"stream": "glass", "capacity_l": 1}],
        },
    )
    assert (r.status_code, r.json()["detail"]) == (
        400,
        "truck 't3': depot_id 'b-depot-1': no such depot here",
    )
    r = c.post(
        f"{API}/0101/disposal-sites",
        headers=h,
        json={
            "id": "d2",
            "lat": 55,
            "lon": 12,
            "streams": ["glass"],
            "opening_hours": "Mo-Fr 25:00",
        },
    )
    assert r.status_code == 400 and "opening_hours 'Mo-Fr 25:00'" in r.json()["detail"]
    r = c.patch(
        f"{API}/0101/disposal-sites/a-disposal-1",
        headers=h,
        json={"streams": ["paper+cardboard", "glass"], "opening_hours": "24/7"},
    )
    assert r.json()["streams"] == ["glass", "paper+cardboard"]


def test_users_bound_their_tokens(fresh_world: World) -> None:
    c, h = fresh_world.client, fresh_world.auth("a-admin")
    r = c.post(f"{API}/0101/users", json={"id": "tech@kk.dk", "name": "Tekniker",
                                           "role": "technician"}, headers=h)
    assert r.status_code == 201, r.text
    r = c.post(f"{API}/0101/tokens", json={"name": "t", "role": "planner",
                                            "user_id": "tech@kk.dk"}, headers=h)
    assert (r.status_code, r.json()["detail"]) == (
        400, "role: 'planner' is above user 'tech@kk.dk''s role 'technician'")
    r = c.post(f"{API}/0101/tokens", json={"name": "t", "role": "technician",
                                            "user_id": "tech@kk.dk"}, headers=h)
    token = r.json()["token"]
    me = {"Authorization": f"Bearer {token}"}
    assert c.get(f"{API}/0101/fleet", headers=me).status_code == 200
    r = c.patch(f"{API}/0101/users/tech@kk.dk", json={"role": "viewer"}, headers=h)
    assert r.json()["role"] == "viewer"
    assert c.get(f"{API}/0101/fleet", headers=me).json() == {
        "detail": "Authorization: token revoked"}
    r = c.post(f"{API}/0101/tokens", json={"name": "t2", "role": "viewer",
                                            "user_id": "tech@kk.dk"}, headers=h)
    me = {"Authorization": f"Bearer {r.json()['token']}"}
    assert c.delete(f"{API}/0101/users/tech@kk.dk", headers=h).json()["disabled_ms"]
    assert c.get(f"{API}/0101/fleet", headers=me).status_code == 401
    r = c.post(f"{API}/0101/tokens", json={"name": "t3", "role": "viewer",
                                            "user_id": "b-user-1"}, headers=h)
    assert r.status_code == 404


def test_next_collection_is_the_first_date_that_sends_a_truck(fresh_world: World) -> None:
    """``GET …/plans/next?from=D``: every plan of the first date from D on with a route (a
    quiet stream's plan of that date too), however many plans are stored; a quiet day before
    it does not count; one municipality's plans never answer for another."""
    c, h = fresh_world.client, fresh_world.auth("a-planner")
    route = [{"truck_id": "a-truck-1", "km": 2.0, "duration_s": 90, "stops": [{
        "index": 0, "kind": "bin", "site_id": "a-site-1", "lat": 55.68, "lon": 12.57,
        "bins": [{"bin_id": "a-bin-1", "stream": "residual"}]}]}]
    for date, stream, trucks in (("2026-12-04", "residual", []), ("2026-12-04", "glass", []),
                                 ("2026-12-07", "residual", route), ("2026-12-07", "glass", [])):
        r = c.post(f"{API}/0101/plans", headers=h,
                   json={"date": date, "stream": stream, "trucks": trucks})
        assert r.status_code == 201, r.text
    for d in range(8, 68):  # more quiet days than the newest 50 plans the list returns
        day = f"2027-01-{d:02d}" if d <= 31 else f"2027-02-{d - 31:02d}"
        assert c.post(f"{API}/0101/plans", headers=h,
                      json={"date": day, "stream": "glass", "trucks": []}).status_code == 201

    def ids(query: str, who: str = "a-viewer", m: str = "0101") -> list[str]:
        r = c.get(f"{API}/{m}/plans/next{query}", headers=fresh_world.auth(who))
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()]

    assert ids("?from=2026-12-01") == ["0101.2026-12-03.all"]
    assert ids("?from=2026-12-04") == ["0101.2026-12-07.glass", "0101.2026-12-07.residual"]
    assert ids("?from=2026-12-04&stream=residual") == ["0101.2026-12-07.residual"]
    assert ids("?from=2026-12-04&stream=glass") == []
    assert ids("?from=2026-12-08") == []
    assert ids("?from=2026-12-04", "b-admin", "0147") == []
    assert ids("?from=2026-12-01", "b-admin", "0147") == ["0147.2026-12-03.all"]
    r = c.get(f"{API}/0101/plans/next?from=2026-13-1", headers=h)
    assert r.status_code == 422 and "from" in r.text
    for url in ("plans/next?from=2026-13-01", "plans?date=2026-02-30"):
        r = c.get(f"{API}/0101/{url}", headers=h)
        field, value = url.split("?")[1].split("=")
        assert (r.status_code, r.json()["detail"]) == (400, f"{field}: '{value}' is not a date")
    r = c.get(f"{API}/0101/plans/next?stream=glas", headers=h)
    assert r.status_code == 400 and r.json()["detail"].startswith("stream: ")
