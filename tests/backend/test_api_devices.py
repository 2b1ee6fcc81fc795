"""Device operations through the API run the provisioning core against the real broker: the
provisioned device connects with its own password, a config change reaches its retained config
topic, and a revoked device is refused."""

from __future__ import annotations

import json

from api_world import World

from smartbins import protocol as p

API = "/api/v1/municipalities/0101"


def test_provision_configure_revoke(fresh_world: World, mqtt_probe) -> None:  # type: ignore[no-untyped-def]
    w = fresh_world
    h = w.auth("a-technician")
    dev = w.ids["a"]["device_id"] + "-api"
    r = w.client.post(f"{API}/devices", json={"id": dev, "bin_id": "a-bin-3",
                                              "thresholds": {"interval_s": 1800}}, headers=h)
    assert r.status_code == 201, r.text
    cfg = r.json()["config_json"]
    assert (cfg["device"], cfg["config"]["interval"]) == (dev, 1800)
    assert r.json()["device"]["bin_id"] == "a-bin-3"
    watcher = mqtt_probe(dev, cfg["password"])  # the device itself reads its config topic
    assert not watcher.connect().is_failure
    watcher.subscribe(f"sb/down/{dev}/config")
    # The password is shown once: never again.
    assert cfg["password"] not in w.client.get(f"{API}/devices/{dev}", headers=h).text

    r = w.client.patch(f"{API}/devices/{dev}", json={"thresholds": {"tilt_deg": 30}}, headers=h)
    assert r.status_code == 200 and r.json()["published"] is True, r.text
    watcher.wait_for(lambda ms: any(json.loads(m.payload).get("tilt") == 30 for m in ms))
    published = p.parse_message(f"sb/down/{dev}/config", watcher.received()[-1].payload)
    assert published.tilt_deg == 30 and published.interval_s == 1800

    r = w.client.patch(f"{API}/devices/{dev}", json={"thresholds": {"tilt_deg": 500}}, headers=h)
    assert r.status_code == 400 and f"device {dev!r}: config tilt: 500" in r.json()["detail"]
    assert w.client.get(f"{API}/devices/{dev}", headers=h).json()["thresholds"]["tilt_deg"] == 30

    r = w.client.post(f"{API}/devices/{dev}/revoke", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert mqtt_probe(dev, cfg["password"]).connect().is_failure

    r = w.client.post(f"{API}/devices", json={"id": dev, "bin_id": "a-bin-4"}, headers=h)
    assert (r.status_code, r.json()["detail"]) == (
        400, f"provisioning failed, nothing changed: device {dev!r} exists already")
