"""`smartbins plan`: a day's collection plan (forecast -> select -> route) from the registry and
the readings, stored for the dashboard and written as JSON, GeoJSON, a route sheet per truck and
the collection-schedule CSV."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from smartbins.errors import SmartbinsError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="Plan a day's collection: which bins, which truck, in which order.",
        description="Forecast every bin's fill from its readings, choose the bins that must be "
        "emptied (overflow risk before the next opportunity) and those worth taking on the "
        "way, and route the trucks (capacity per compartment, disposal trips, shifts). The "
        "plan is stored in the registry (the dashboard and the route sheets read it), bins left "
        "out that will probably overflow first raise a forecast-overflow alert, and it is "
        "written to --out as plan.json, plan.geojson, route-<truck>.html/.txt and "
        "schedule.csv (the simulator's collection-schedule format).",
    )
    p.add_argument("--config", required=True, type=Path, metavar="FILE",
                   help="The API's TOML config (registry path and InfluxDB access).")
    g = p.add_argument_group("What to plan")
    g.add_argument("--municipality", required=True, help="The municipality's id.")
    g.add_argument("--date", required=True, help="The day to plan (YYYY-MM-DD, local date).")
    g.add_argument("--stream", help="One stream (e.g. residual, paper+cardboard). Default: all "
                   "streams the trucks carry.")
    g.add_argument("--next-collection", action="store_true",
                   help="Plan the first working day from --date on that sends a truck out (a "
                   "stream goes out only on a day when one of its bins is due); every day "
                   "planned on the way is stored too.")
    s = p.add_argument_group("How")
    s.add_argument("--time-limit", type=float, default=10.0,
                   help="The router's time budget [s]. Default: 10.")
    s.add_argument("--iterations", type=int, default=0,
                   help="Stop the router after this many iterations instead (reproducible).")
    s.add_argument("--seed", type=int, default=1, help="The router's seed. Default: 1.")
    s.add_argument("--now", type=int, help=argparse.SUPPRESS)  # tests: the forecast's now [s]
    s.add_argument("--no-store", action="store_true",
                   help="Only write the files; do not store the plan in the registry.")
    s.add_argument("--out", type=Path, default=Path("."),
                   help="Directory for the files. Default: the current directory.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from backend import plan_export
    from backend.app import influx_factory
    from backend.planning import PlanningError, PlanRequest, plan_and_store, planned_days
    from backend.settings import load
    from routing.schedule import write_collection_schedule
    from smartbins.registry import Registry

    settings = load(args.config)
    req = PlanRequest(args.municipality, args.date, args.stream, time_limit_s=args.time_limit,
                      iterations=args.iterations, seed=args.seed)
    reg = Registry(settings.registry.path)
    client = influx_factory(settings)()
    try:
        try:
            if args.no_store:
                *_, doc = planned_days(reg, client.query, req, now_s=args.now,
                                       next_collection=args.next_collection)
            else:
                doc = plan_and_store(reg, client.query, req, now_s=args.now,
                                     channels=settings.alerts.channels,
                                     next_collection=args.next_collection)
        except PlanningError as e:
            raise SmartbinsError(str(e)) from None
    finally:
        client.close()
        reg.close()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "plan.geojson").write_text(json.dumps(plan_export.to_geojson(doc)) + "\n")
    for t in doc["trucks"]:
        (out / f"route-{t['truck_id']}.html").write_text(plan_export.route_sheet_html(doc, t))
        (out / f"route-{t['truck_id']}.txt").write_text(plan_export.route_sheet_text(doc, t))
    write_collection_schedule(out / "schedule.csv", plan_export.schedule_rows(doc))
    bins = sum(len(s["bins"]) for t in doc["trucks"] for s in t["stops"] if s["kind"] == "bin")
    km = sum(t["km"] for t in doc["trucks"])
    print(f"plan {doc.get('id', '(not stored)')} for {doc['date']}: {bins} bins on "
          f"{len(doc['trucks'])} trucks, {km:.1f} km; {len(doc['skipped'])} bins left for "
          f"later (highest accepted risk "
          f"{max([s['overflow_probability'] for s in doc['skipped']], default=0):.1%})")
    for stream, trip in sorted(doc.get("trips", {}).items()):
        print(f"  {stream}: " + (
            f"goes out, taking what would overflow before {trip['next_opportunity']}"
            if trip["trip"] else f"no trip: nothing due before {trip['next_opportunity']}"))
    for t in doc["trucks"]:
        print(f"  {t['truck_id']}: {len(t['stops'])} stops, {t['km']:.1f} km, "
              f"{t['duration_s'] / 3600:.1f} h; route sheet {out / ('route-' + t['truck_id'])}"
              ".html")
    if doc.get("violations"):
        print(f"WARNING: the routing core's checker found: {'; '.join(doc['violations'])}")
        return 1
    return 0
