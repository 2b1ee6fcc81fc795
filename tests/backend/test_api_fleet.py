"""Fleet health: what technicians see per device, and the devices to visit, worst first."""

from __future__ import annotations

from api_world import HOUR_MS, World, readings_lines

from smartbins import protocol as p
from smartbins import provisioning, storage
from smartbins.passwords import PasswordFile
from smartbins.registry import now_ms
from smartbins.testing import Broker

API = "/api/v1/municipalities/0101"


def test_devices_to_visit_worst_first(fresh_world: World, broker: Broker) -> None:
    w = fresh_world
    a = w.ids["a"]
    quiet = a["device_id"] + "-quiet"
    with w.registry() as reg:
        provisioning.provision(reg, PasswordFile(broker.server.passwd_path),
                               [provisioning.ProvisionRequest(quiet, "a-bin-4")],
                               at_ms=now_ms() - 20 * HOUR_MS)
    t = now_ms()
    lines = readings_lines(quiet, t - 12 * HOUR_MS, 2, 50.0, fw="0.9.0")  # then silence
    for i in range(3):  # three readings without a distance: the sensor failed
        r = p.Reading(device=a["device_2"], seq=1000 + i, boot=2 + i, ts_ms=t - 30_000 + i,
                      fw="1.0.0", interval_s=3600, errors=(1,), flags=int(p.Flag.SENSOR_ERROR),
                      battery_mv=3800, rssi_dbm=-70)
        lines.append(storage.to_line(storage.reading_point(r)))
    for i in range(2):
        dl = p.DeadLetter(p.Reason.BAD_JSON, "not JSON", f"sb/up/{a['device_2']}/reading",
                          b"{" + bytes([i]), t - 1000 + i, device=a["device_2"])
        lines.append(storage.to_line(storage.deadletter_point(dl)))
    c = w.influx.client(w.database)
    c.write_lines(lines, precision=storage.PRECISION)
    c.close()
    w.client.app.state.readings.refresh()

    r = w.client.get(f"{API}/fleet", headers=w.auth("a-technician"))
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [x["device_id"] for x in rows] == [quiet, a["device_2"], a["device_id"]]
    q, faulty, fine = rows
    assert q["reasons"] == ["offline"] and q["firmware_reported"] == "0.9.0"
    assert faulty["sensor_faults"] == 3 and faulty["dead_letters"] == {"bad_json": 2}
    assert faulty["reboots"] == 3 and faulty["flags"] == ["sensor_error"]
    assert faulty["reasons"] == ["sensor faults", "dead letters", "reboots"]
    assert fine["reasons"] == [] and fine["priority"] == 0
    assert fine["battery_trend_mv_per_day"] < 0 and fine["rssi_dbm"] == -70
    assert fine["bin_id"] == "a-bin-1" and fine["readings"] == 48
