"""The dashboard in Debian's chromium against the real backend and a simulated city: what a
planner, a technician and a viewer see and may do. Each test saves a screenshot of its view."""

from __future__ import annotations

import datetime as dt
import math
import time

import dash_city
from dash_city import ARTIFACTS

from smartbins.codes import FRACTIONS

M = dash_city.MUNICIPALITY
TIMEOUT = 20_000


def open_view(page, city, view: str = "map") -> None:
    page.goto(f"{city.base_url}/dashboard/#/{view}")


def wait_map(page) -> None:
    page.wait_for_selector("#map[data-ready='1']", timeout=TIMEOUT)


def poll(page, done) -> None:
    """Let the page run until ``done()`` (at most TIMEOUT); for what no selector can wait for
    (the page's policy forbids wait_for_function's eval)."""
    for _ in range(TIMEOUT // 50):
        if done():
            return
        page.wait_for_timeout(50)


def bin_stops(truck: dict) -> list[dict]:
    return [s for s in truck["stops"] if s["kind"] == "bin"]


def test_log_in_with_a_token_and_the_map_shows_every_registered_bin(page_as, city, artifacts):
    page, watch = page_as(None)
    open_view(page, city)
    page.fill("#token", "sbt_000000000000_" + "x" * 43)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#login [role=alert]", timeout=TIMEOUT)  # a wrong token is refused

    page.fill("#token", city.tokens["planner"])
    page.click("#login button[type=submit]")
    wait_map(page)
    canvas = page.locator("#map canvas")
    assert int(canvas.get_attribute("data-bins")) == len(city.bin_ids)
    assert int(canvas.get_attribute("data-drawn")) == len(city.bin_ids)  # all in view
    drawn = page.evaluate("window.smartbinsMap.bins.map(b => b.id)")
    assert sorted(drawn) == sorted(city.bin_ids)
    assert page.locator("#identity").inner_text().startswith("test planner")
    page.screenshot(path=artifacts / "map.png")
    # the first draw needs the latest state and the places only: no plan, no registry dump
    asked = {u.split("?")[0].removeprefix(city.base_url) for u in watch.requests}
    assert f"/api/v1/municipalities/{M}/state" in asked
    assert f"/api/v1/municipalities/{M}/plans" not in asked


def test_filters_and_forecast_colouring(page_as, city):
    page, _ = page_as("planner")
    open_view(page, city)
    wait_map(page)
    state = city.api("GET", f"/api/v1/municipalities/{M}/state")
    glass = [s["bin_id"] for s in state if s["stream"] == "glass"]
    page.select_option("#stream-filter", "glass")
    assert page.locator("#bin-count").inner_text().startswith(str(len(glass)))
    assert sorted(page.evaluate("window.smartbinsMap.bins.map(b => b.id)")) == sorted(glass)
    area = next(s["area"] for s in state if s["area"])
    page.select_option("#stream-filter", "")
    page.select_option("#area-filter", area)
    in_area = sorted(s["bin_id"] for s in state if s["area"] == area)
    assert sorted(page.evaluate("window.smartbinsMap.bins.map(b => b.id)")) == in_area
    page.select_option("#area-filter", "")
    page.select_option("#colour-mode", "forecast")  # fetches the next collection's plan
    wait_map(page)
    values = page.evaluate("Object.fromEntries(window.smartbinsMap.bins.map(b => [b.id, b.value]))")
    forecast = city.plan["forecast"]
    assert values == {b: forecast[b]["fill_pct"] if b in forecast else None for b in values}
    page.check("#show-routes")
    wait_map(page)
    assert page.evaluate("window.smartbinsMap.routes.length") == len(city.plan["trucks"])


def test_clicking_a_bin_opens_its_history(page_as, city, artifacts):
    page, _ = page_as("planner")
    open_view(page, city)
    wait_map(page)
    bins = {b["id"]: b for b in city.api("GET", f"/api/v1/municipalities/{M}/bins")}
    target = city.bin_ids[len(city.bin_ids) // 2]
    x, y = page.evaluate(f"window.smartbinsMap.screenPosition({target!r})")
    page.locator("#map canvas").click(position={"x": x, "y": y})
    page.wait_for_selector("#bin-page", timeout=TIMEOUT)
    opened = page.locator("#bin-page").get_attribute("data-bin")
    # bins of one site share its point: the click opens one of them
    assert (bins[opened]["lat"], bins[opened]["lon"]) == (bins[target]["lat"], bins[target]["lon"])
    page.wait_for_selector("svg.chart polyline.line", timeout=TIMEOUT)
    history = city.api("GET", f"/api/v1/municipalities/{M}/bins/{opened}/readings")
    points = page.locator("svg.chart polyline.line").get_attribute("points").split()
    assert len(points) == len([p for p in history["points"] if p["fill_pct"] is not None])
    start = int((time.time() - 14 * 86400) * 1000)
    found = city.api("GET", f"/api/v1/municipalities/{M}/emptyings?bin_id={opened}"
                     f"&start_ms={start}")
    assert all(e["bin_id"] == opened for e in found)
    assert page.locator("#emptyings li").count() == len(found)
    assert page.locator("svg.chart line.emptying").count() == len(found)
    forecast = city.api("GET", f"/api/v1/municipalities/{M}/bins/{opened}/forecast")
    if forecast["level_pct"] is not None:  # a bin with readings has a band ahead
        assert len(forecast["points"]) == 25  # 48 h every 2 h
        page.wait_for_selector("svg.chart polygon.band", timeout=TIMEOUT)
        assert len(page.locator("svg.chart polyline.forecast").get_attribute("points").split()) \
            == len([p for p in forecast["points"] if p["fill_pct"] is not None])
    page.screenshot(path=artifacts / "bin.png", full_page=True)


def test_plan_lists_every_truck_with_its_route_and_stops(page_as, city, artifacts):
    page, _ = page_as("planner")
    open_view(page, city, f"plan/{city.plan['date']}")
    page.wait_for_selector("#plan-trucks", timeout=TIMEOUT)
    rows = page.locator("#plan-trucks tbody tr")
    trucks = city.plan["trucks"]
    # several trucks, so the table is not a one-row special case (the test city starts at
    # midnight UTC, so the plan does not depend on the hour the test runs at)
    assert len(trucks) >= 2
    assert rows.count() == len(trucks)
    for i, truck in enumerate(trucks):
        row = rows.nth(i)
        assert row.get_attribute("data-truck") == truck["truck_id"]
        assert row.locator("td.stops").inner_text() == str(len(bin_stops(truck)))
    assert "null" not in page.locator("main").inner_text()
    skipped = page.locator("#plan-skipped tbody tr")
    assert skipped.count() == len(city.plan["skipped"])
    page.screenshot(path=artifacts / "plan.png", full_page=True)
    for truck in trucks:
        open_view(page, city, f"sheet/{city.plan_id}/{truck['truck_id']}")
        page.wait_for_selector(f"#route-sheet h1:has-text('{truck['name']}')", timeout=TIMEOUT)
        items = page.locator("#route-sheet li")
        assert items.count() == len(truck["stops"])
        first = bin_stops(truck)[0]
        text = items.nth(first["index"]).inner_text()
        assert first["address"] in text
        # the page rounds halves up (toLocaleString), Python's round() to even
        assert f"{math.floor(first['bins'][0]['expected_fill_pct'] + 0.5)} %" in text


def test_plan_view_opens_on_the_next_collection_and_explains_a_quiet_day(page_as, city):
    """Without a date the plan view shows the next collection (tomorrow, or the first later
    day with routes); a day on which no truck goes out says when each stream goes next."""
    page, _ = page_as("planner")
    open_view(page, city, "plan")
    page.wait_for_selector("#plan-trucks", timeout=TIMEOUT)
    assert page.locator("#plan-date").input_value() == city.plan["date"]
    assert page.locator("#plan-trucks tbody tr").count() == len(city.plan["trucks"])

    quiet = (dt.date.fromisoformat(city.plan["date"]) + dt.timedelta(days=40)).isoformat()
    later = (dt.date.fromisoformat(quiet) + dt.timedelta(days=1)).isoformat()
    trips = {s: {"trip": False, "lookahead_days": 2, "next_opportunity": later}
             for s in ("glass", "residual")}
    skipped = city.plan["skipped"][:3]
    city.api("POST", f"/api/v1/municipalities/{M}/plans",
             body={"date": quiet, "trucks": [], "skipped": skipped, "trips": trips,
                   "max_risk": 0.95})
    open_view(page, city, f"plan/{quiet}")
    page.wait_for_selector("#no-trip", timeout=TIMEOUT)
    items = page.locator("#no-trip li")
    assert items.count() == 2
    for i, s in enumerate(sorted(trips)):
        assert items.nth(i).get_attribute("data-stream") == s
        assert items.nth(i).locator("a").get_attribute("href") == f"#/plan/{later}"
    assert page.locator("#plan-skipped tbody tr").count() == len(skipped)
    assert page.locator("#no-plan").count() == 0


def test_route_sheet_on_a_phone_and_on_paper(page_as, city, artifacts):
    page, _ = page_as("technician", lang="da", viewport={"width": 390, "height": 844},
                      is_mobile=True, has_touch=True)
    truck = city.plan["trucks"][0]
    open_view(page, city, f"sheet/{city.plan_id}/{truck['truck_id']}")
    page.wait_for_selector("#route-sheet li", timeout=TIMEOUT)
    assert page.locator("h1").inner_text().startswith("Køreliste")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    box = page.locator("#route-sheet button.mark").first.bounding_box()
    assert box["height"] >= 40  # a thumb can hit it
    page.screenshot(path=artifacts / "route-sheet-phone.png", full_page=True)
    page.emulate_media(media="print")
    assert not page.locator("#route-sheet button.mark").first.is_visible()
    assert not page.locator("header.top").is_visible()
    page.pdf(path=artifacts / "route-sheet.pdf")


def test_marking_a_stop_done_shows_on_the_plan(page_as, city, artifacts):
    page, _ = page_as("technician")
    truck = city.plan["trucks"][-1]
    stop = bin_stops(truck)[0]
    open_view(page, city, f"sheet/{city.plan_id}/{truck['truck_id']}")
    item = page.locator(f"#route-sheet li[data-stop='{stop['index']}']")
    item.wait_for(timeout=TIMEOUT)
    assert item.get_attribute("data-done") == "0"
    item.locator("button.mark").click()
    page.wait_for_selector(f"#route-sheet li[data-stop='{stop['index']}'][data-done='1']",
                           timeout=TIMEOUT)
    page.screenshot(path=artifacts / "route-sheet.png", full_page=True)
    stored = city.api("GET", f"/api/v1/municipalities/{M}/plans/{city.plan_id}")
    marked = next(t for t in stored["trucks"] if t["truck_id"] == truck["truck_id"])
    assert marked["stops"][stop["index"]]["done_ms"] is not None
    assert marked["stops"][stop["index"]]["done_by"] == "test technician"

    open_view(page, city, f"plan/{city.plan['date']}")
    cell = page.locator(f"#plan-trucks tr[data-truck='{truck['truck_id']}'] td.done-count")
    cell.wait_for(timeout=TIMEOUT)
    assert cell.inner_text() == f"1/{len(bin_stops(truck))}"

    # and undone again: the plan forgets the mark
    open_view(page, city, f"sheet/{city.plan_id}/{truck['truck_id']}")
    page.locator(f"#route-sheet li[data-stop='{stop['index']}'] button.mark").click()
    page.wait_for_selector(f"#route-sheet li[data-stop='{stop['index']}'][data-done='0']",
                           timeout=TIMEOUT)
    stored = city.api("GET", f"/api/v1/municipalities/{M}/plans/{city.plan_id}")
    again = next(t for t in stored["trucks"] if t["truck_id"] == truck["truck_id"])
    assert again["stops"][stop["index"]]["done_ms"] is None


def test_a_viewer_sees_no_write_controls(page_as, city, artifacts):
    page, _ = page_as("viewer")
    open_view(page, city)
    wait_map(page)
    assert not page.locator('#nav a[data-view="fleet"]').is_visible()
    truck = city.plan["trucks"][0]
    open_view(page, city, f"sheet/{city.plan_id}/{truck['truck_id']}")
    page.wait_for_selector("#route-sheet li", timeout=TIMEOUT)
    assert page.locator("#route-sheet button.mark").count() == 0
    open_view(page, city, "alerts/all")
    page.wait_for_selector("#alerts, #no-alerts", timeout=TIMEOUT)
    assert page.locator("button.ack, button.resolve").count() == 0
    page.screenshot(path=artifacts / "alerts-viewer.png", full_page=True)


def test_danish_names_fractions_as_municipalities_write_them(page_as, city, artifacts):
    page, _ = page_as("planner", lang="da")
    open_view(page, city)
    wait_map(page)
    assert page.locator('#nav a[data-view="map"]').inner_text() == "Kort"
    options = page.locator("#stream-filter option").all_inner_texts()
    state = city.api("GET", f"/api/v1/municipalities/{M}/state")
    for stream in {s["stream"] for s in state if "+" not in s["stream"]}:
        assert FRACTIONS[stream].name_da in options
    page.select_option("#language", "en")
    assert page.locator('#nav a[data-view="map"]').inner_text() == "Map"
    page.reload()
    wait_map(page)
    assert page.locator('#nav a[data-view="map"]').inner_text() == "Map"  # kept for the user


def test_collections_charts(page_as, city, artifacts):
    page, _ = page_as("planner")
    open_view(page, city, "charts/30")
    page.wait_for_selector("#charts svg.chart", timeout=TIMEOUT)
    start = int((time.time() - 30 * 86400) * 1000)
    emptyings = city.api("GET", f"/api/v1/municipalities/{M}/emptyings?start_ms={start}")
    assert emptyings, "the simulated city had collections"
    assert page.locator("#charts svg.chart").count() == 4
    page.screenshot(path=artifacts / "charts.png", full_page=True)


def test_fleet_health_for_technicians(page_as, city, artifacts):
    page, _ = page_as("technician")
    open_view(page, city, "fleet")
    page.wait_for_selector("#fleet-devices", timeout=TIMEOUT)
    health = city.api("GET", f"/api/v1/municipalities/{M}/fleet", "technician")
    rows = page.locator("#fleet-devices tbody tr")
    assert rows.count() == len(health) == len(city.bin_ids)
    assert [rows.nth(i).get_attribute("data-device") for i in range(3)] == [
        d["device_id"] for d in health[:3]]  # worst first, as the API ranks them
    to_visit = [d["device_id"] for d in health if d["reasons"]]
    if to_visit:
        visit = page.locator("#fleet-visit tbody tr")
        assert [visit.nth(i).get_attribute("data-device") for i in range(visit.count())] == to_visit
    page.screenshot(path=artifacts / "fleet.png", full_page=True)


def test_acknowledging_and_resolving_an_alert_changes_its_state(page_as, city, artifacts):
    page, _ = page_as("technician")
    open_alerts = city.api("GET", f"/api/v1/municipalities/{M}/alerts?state=open")
    assert len(open_alerts) >= 2, "the simulated city raised alerts"
    open_view(page, city, "alerts/open")
    page.wait_for_selector("#alerts", timeout=TIMEOUT)
    rows = page.locator("#alerts tbody tr")
    assert rows.count() == len(open_alerts)
    page.screenshot(path=artifacts / "alerts.png", full_page=True)
    first, second = open_alerts[0]["id"], open_alerts[1]["id"]
    page.locator(f"#alerts tr[data-alert='{first}'] button.ack").click()
    page.wait_for_selector(f"#alerts tr[data-alert='{first}']", state="detached", timeout=TIMEOUT)
    assert city.api("GET", f"/api/v1/municipalities/{M}/alerts/{first}")["state"] == "acknowledged"
    page.locator(f"#alerts tr[data-alert='{second}'] button.resolve").click()
    page.wait_for_selector(f"#alerts tr[data-alert='{second}']", state="detached",
                           timeout=TIMEOUT)
    assert city.api("GET", f"/api/v1/municipalities/{M}/alerts/{second}")["state"] == "resolved"
    open_view(page, city, "alerts/all")
    page.wait_for_selector(f"#alerts tr[data-alert='{first}'][data-state='acknowledged']",
                           timeout=TIMEOUT)
    row = page.locator(f"#alerts tr[data-alert='{first}']")
    assert row.locator("button.ack").count() == 0  # acknowledged: only resolve is left
    assert row.locator("button.resolve").count() == 1


def test_a_view_still_loading_never_replaces_a_newer_one(page_as, city):
    """Moving on before a view has its data: when the data comes, that view is dropped and
    the newer one stays (after an acknowledgement the alerts page re-reads the open alerts,
    and a technician may already have moved on to all alerts)."""
    page, _ = page_as("technician")
    held = []
    page.route(lambda url: "/alerts" in url and "state=open" in url, lambda r: held.append(r))
    open_view(page, city, "alerts/open")
    poll(page, lambda: bool(held))
    assert held, "the open alerts were asked for"
    open_view(page, city, "alerts/all")
    page.wait_for_selector("#alert-state", timeout=TIMEOUT)
    assert page.locator("#alert-state").input_value() == "all"
    assert page.locator("#main").get_attribute("data-dropped") is None
    held[0].continue_()
    # until the late answer is either dropped or (the defect) shown
    poll(page, lambda: page.evaluate("document.getElementById('main').dataset.dropped || "
                                     "document.getElementById('alert-state').value === 'open'"))
    assert page.locator("#alert-state").input_value() == "all"
    assert page.locator("#main").get_attribute("data-dropped") == "1"
    assert page.locator("#alerts tbody tr").count() == len(
        city.api("GET", f"/api/v1/municipalities/{M}/alerts"))


def test_screenshots_are_saved():
    # run last in this module: each view above left its picture
    views = ("map", "bin", "plan", "route-sheet", "route-sheet-phone", "charts", "fleet", "alerts")
    for name in views:
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name
