"""`smartbins evaluate`: collection policies in closed loop on the simulator's ground truth.

Thin over ``simulator.closed_loop`` (one run) and ``simulator.closed_loop_report`` (seeds,
paired comparisons, table, plots); ``docs/forecast.md`` explains the policies and figures.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from smartbins.errors import SmartbinsError

POLICY_NAMES = ("fixed", "rule80", "forecast", "perfect")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="Compare collection policies in closed loop on simulated ground truth.",
        description="Run a seeded simulated city for some weeks, in process and much faster "
        "than real time, under each collection policy: a fixed weekly schedule, 'empty at "
        "80 %%', our forecast-driven plan (forecasting from the simulated sensor readings, "
        "faults included) and the same plan with perfect knowledge of the fill. Every policy "
        "is routed by the same router. Prints per policy and stream km per tonne, km, "
        "truck-hours, emptyings, fill at emptying, overflow bin-days, CO2 per tonne and "
        "planning time, with paired comparisons across seeds (95 %% intervals), and writes "
        "the report and PNG plots to --out.",
    )
    g = parser.add_argument_group("What to simulate")
    g.add_argument("--bins", type=int, default=2000, help="Bins in the city. Default: 2000.")
    g.add_argument("--weeks", type=int, default=13, help="Evaluated weeks. Default: 13.")
    g.add_argument("--warmup-days", type=int, default=21,
                   help="Days under the fixed schedule before the evaluation (the forecaster "
                   "learns from them). Default: 21.")
    g.add_argument("--seeds", default="1,2,3",
                   help="Comma-separated seeds, one city each. Default: 1,2,3.")
    g.add_argument("--policies", default=",".join(POLICY_NAMES),
                   help=f"Comma-separated policies. Default: {','.join(POLICY_NAMES)}.")
    r = parser.add_argument_group("Planning")
    r.add_argument("--route-seconds", type=float, default=1.0,
                   help="Routing time per day and policy [s]. Default: 1.")
    r.add_argument("--route-iterations", type=int, default=0,
                   help="Router iterations per day and policy instead of a time limit: the "
                   "same plans on any machine and under any load. Default: 0 (use "
                   "--route-seconds).")
    r.add_argument("--jobs", type=int, default=1,
                   help="Seeds run in parallel processes. Default: 1.")
    r.add_argument("--select", type=Path,
                   help="SelectParams TOML file (max_risk, candidate_min_pct, ...).")
    r.add_argument("--forecast", type=Path, help="ForecastParams TOML file.")
    parser.add_argument("--out", type=Path, default=Path("evaluate-report"),
                        help="Folder for evaluate.md and the PNG plots. Default: "
                        "./evaluate-report.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from routing.plan_params import ForecastParams, SelectParams
    from simulator.closed_loop import LoopConfig
    from simulator.closed_loop_report import evaluate, report
    from smartbins.progress import ProgressBar

    try:
        seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    except ValueError:
        raise SmartbinsError(f"--seeds must be comma-separated integers, got {args.seeds!r}") \
            from None
    policies = [p.strip() for p in str(args.policies).split(",") if p.strip()]
    bad = [p for p in policies if p not in POLICY_NAMES]
    if bad or not policies or not seeds:
        raise SmartbinsError(f"--policies must name some of {', '.join(POLICY_NAMES)} and "
                             f"--seeds at least one seed; got {args.policies!r}, {args.seeds!r}")
    try:
        select = SelectParams.from_file(args.select) if args.select else SelectParams()
        fparams = ForecastParams.from_file(args.forecast) if args.forecast else ForecastParams()
        cfg = LoopConfig(bins=args.bins, weeks=args.weeks, warmup_days=args.warmup_days,
                         route_s=args.route_seconds, route_iterations=args.route_iterations,
                         select=select, forecast=fparams)
    except (ValueError, OSError) as e:
        raise SmartbinsError(str(e)) from None
    if cfg.bins < 1 or cfg.weeks < 1 or cfg.warmup_days < 7 or cfg.route_iterations < 0:
        raise SmartbinsError("--bins and --weeks must be >= 1, --warmup-days >= 7 and "
                             "--route-iterations >= 0")
    results = evaluate(cfg, seeds, policies, ProgressBar("evaluating"), jobs=max(1, args.jobs))
    command = (f"smartbins evaluate --bins {cfg.bins} --weeks {cfg.weeks} --warmup-days "
               f"{cfg.warmup_days} --seeds {','.join(map(str, seeds))} --policies "
               f"{','.join(policies)} "
               + (f"--route-iterations {cfg.route_iterations}" if cfg.route_iterations
                  else f"--route-seconds {cfg.route_s:g}") + f" --jobs {args.jobs}"
               + (f" --select {shlex.quote(str(args.select))}" if args.select else "")
               + (f" --forecast {shlex.quote(str(args.forecast))}" if args.forecast else ""))
    text = report(results, cfg, args.out, command=command)
    print(text)
    print(f"report and plots in {args.out}/")
    return 0
