"""The dashboard's files as the backend serves them: only what is in the repository, each with a
policy that lets the browser talk to this origin only; the config the page reads."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.dashboard import FILES, STATIC, router
from backend.dashboard.settings import DashboardSettings
from smartbins.codes import FRACTIONS


def client(settings: DashboardSettings | None = None) -> TestClient:
    app = FastAPI()
    app.include_router(router(settings))
    return TestClient(app)


def test_every_file_is_served_with_a_same_origin_policy() -> None:
    c = client()
    for path in FILES:
        r = c.get(f"/dashboard/{path}")
        assert r.status_code == 200, path
        assert r.content == (STATIC / path).read_bytes()
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "connect-src 'self'" in csp
        assert "http" not in csp  # no other host
    assert c.get("/dashboard/").text == (STATIC / "index.html").read_text()
    assert c.get("/dashboard/app.js").status_code == 404
    assert c.get("/dashboard/js/main.js").headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["../__init__.py", "..%2F__init__.py", "js/../../settings.py",
                                  "/etc/passwd", "static/index.html"])
def test_nothing_outside_the_static_files(path: str) -> None:
    r = client().get(f"/dashboard/{path}")
    assert r.status_code == 404


def test_a_tile_server_is_the_only_other_host_and_only_for_images() -> None:
    c = client(DashboardSettings(tile_url="https://tiles.example.org/{z}/{x}/{y}.png"))
    csp = c.get("/dashboard/").headers["content-security-policy"]
    assert "img-src 'self' data: https://tiles.example.org;" in csp
    assert "connect-src 'self';" in csp and "script-src 'self';" in csp
    assert c.get("/dashboard/config.json").json()["tile_url"].startswith("https://tiles.")
    with pytest.raises(ValueError, match=r"tile_url.*lacks \{x\}"):
        DashboardSettings(tile_url="https://tiles.example.org/{z}/{y}.png")
    with pytest.raises(ValueError, match=r"tile_url.*http"):
        DashboardSettings(tile_url="file:///tiles/{z}/{x}/{y}.png")


def test_config_names_every_fraction_in_both_languages() -> None:
    cfg = client().get("/dashboard/config.json").json()
    assert cfg["tile_url"] is None
    assert cfg["fractions"] == {f.code: {"da": f.name_da, "en": f.name_en}
                                for f in FRACTIONS.values()}
    assert cfg["fractions"]["cartons"]["da"] == "mad- og drikkekartoner"


def test_index_preloads_every_module_and_loads_nothing_from_elsewhere() -> None:
    html = (STATIC / "index.html").read_text()
    preloaded = set(re.findall(r'rel="modulepreload" href="([^"]+)"', html))
    modules = {p for p in FILES if p.endswith(".js") and p != "js/main.js"}
    assert preloaded == modules
    for path, file in FILES.items():
        text = file.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert not re.search(r"""(fetch|import)\(\s*["'`]https?://""", text), path
