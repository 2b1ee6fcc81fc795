"""Who may write what: every write endpoint × every role, no token, an expired and a revoked
token → allowed, 401 or 403. Generated from the app's routes: a new write route fails here
until routes_catalogue.py gives it a body and (if not planner) its role."""

from __future__ import annotations

from api_world import World
from routes_catalogue import (
    PREFIX,
    WRITE_METHODS,
    fill,
    request_kwargs,
    required_role,
    routes,
    spare_ids,
)

from smartbins.tokens import role_rank

#: Callers, least privileged first (allowed writes of later callers may change the state the
#: earlier ones saw; their answers are only checked for not being 401/403/5xx).
CALLERS = ("none", "expired", "revoked", "a-viewer", "a-technician", "a-planner", "a-admin",
           "root")


def expected(caller: str, need: str) -> int | None:
    """401/403, or None for allowed."""
    if caller in ("none", "expired", "revoked"):
        return 401
    if need == "root":
        return None if caller == "root" else 403
    role = "admin" if caller == "root" else caller.removeprefix("a-")
    return None if role_rank(role) >= role_rank(need) else 403


def test_auth_matrix_over_every_write_endpoint(fresh_world: World) -> None:
    w = fresh_world
    writes = [(m, p) for m, p in routes(w.client.app) if m.lower() in WRITE_METHODS]
    assert len(writes) >= 25, writes
    outcomes = []
    for method, path in writes:
        need = required_role(method, path)
        for caller in CALLERS:
            kwargs = request_kwargs(method, path, w.ids["a"])
            headers = {**kwargs.pop("headers", {}), **w.auth(caller)}
            url = PREFIX + fill(path, spare_ids(w.ids["a"]))
            r = w.client.request(method, url, headers=headers,
                                 **kwargs)
            want = expected(caller, need)
            got = r.status_code
            ok = got == want if want else got not in (401, 403) and got < 500
            outcomes.append((ok, method, path, caller, want or "allowed", got, r.text[:200]))
    bad = [o for o in outcomes if not o[0]]
    assert not bad, "\n".join(str(o[1:]) for o in bad)
    # Each allowed write really happened at least once (not all refused for another reason).
    allowed_2xx = {(m, p) for ok, m, p, c, want, got, _ in outcomes if want == "allowed"
                   and 200 <= got < 300}
    missing = set(writes) - allowed_2xx
    assert not missing, [o[1:] for o in outcomes if (o[1], o[2]) in missing]


def test_401_names_the_problem(world: World) -> None:
    c = world.client
    url = f"{PREFIX}/municipalities/0101/sites"
    r = c.post(url, json={})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json() == {"detail": "Authorization: a token is needed: Authorization: Bearer sbt_..."}
    assert c.get(url, headers=world.auth("expired")).json() == {
        "detail": "Authorization: token expired"}
    assert c.get(url, headers=world.auth("revoked")).json() == {
        "detail": "Authorization: token revoked"}
    r = c.get(url, headers={"Authorization": "Bearer sbt_000000000000_" + "x" * 43})
    assert r.json() == {"detail": "Authorization: unknown token"}
    r = c.get(url, headers={"Authorization": "Bearer hunter2"})
    assert r.json() == {"detail": "Authorization: not a smartbins token"}
    r = c.post(url, json={"id": "s", "lat": 1, "lon": 1}, headers=world.auth("a-viewer"))
    assert (r.status_code, r.json()) == (
        403, {"detail": "role 'viewer' may not do this: needs 'planner' or above"})


def test_anonymous_callers_see_open_data_only(world: World) -> None:
    c = world.client
    for method, path in routes(c.app):
        ids = world.ids["a"]
        r = c.request(method, PREFIX + fill(path, ids))
        if path.startswith("/open/"):
            assert r.status_code == 200, (path, r.text)
        else:
            assert r.status_code == 401, (method, path, r.status_code)
