"""The `mentor` stage: everything the MentorNet study needs before training.

1. Plan: from the active profile's MentorNet study, which mentors are needed (PD once; DD per
   (source dataset, StudentNet, noise variant[, run seed]), the source being the run's own
   dataset or the method's `transfer_from` for transfer) and which Forgetting cells need a
   dropout rate.
2. Pilot runs through the ordinary runner (cached by config hash, 2 processes on CPU):
   DD burn-in StudentNets (`mentornet_record`, v = 1, features of the clean subset recorded
   over the burn-in period, `mentor.dd.record_fraction` of the epochs, from which the pilot
   fits its DD mentor: BCE, v* = 1[clean])
   and Forgetting pilots (one run per grid value, selection seed, best validation accuracy).
3. Fit MentorNet PD (Eq. 7 targets on a grid at every epoch %, MSE); collect the DD mentors
   (with `mentor.dd.per_seed` one per run seed).
4. Write results/mentors/: <mentor>.pt, assignments.json (run_dir -> mentor file + sha256),
   forgetting_selection.json, summary.json (fit statistics, the Proposition-1 metric, ...),
   surface_<mentor>.csv and curriculum_surface.png (Fig. 4).
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ...config import Params, RunSpec, cell_name, expand_study, run_noise_seed
from ...io import atomic_write_text, read_json, sha256_file, write_json
from ...registry import ConfigError
from ...runner import run_study
from ...sensitivity import sensitivity_runs
from ...stats import mean_ci
from .fit import fit_pd_mentor
from .net import build_mentor, load_mentor, save_mentor
from .settings import mentor_settings
from .spade import MentorNetSPADE
from .surface import (figure_mentors, pd_surface_error, plot_surfaces, prop1_violations, surface,
                      surface_grid)

PILOT_STUDY = "pilots"


def dd_name(dataset: str, model: str, rate: float, seed: int | None = None) -> str:
    """Mentor file stem: dd-<dataset>-<model>-n<rate>[-s<run seed>] (-s: one mentor per seed)."""
    return f"dd-{dataset}-{model}-n{rate:g}" + ("" if seed is None else f"-s{seed}")


def plan(params: Params) -> dict[str, Any]:
    """Mentors to fit, pilot runs to train and the cell -> mentor assignments of the study.
    With `mentor.dd.per_seed` a DD run of seed s gets the mentor learned from seed s's own noisy
    labels (its full noise variant), by a burn-in StudentNet of training seed
    `dd.burn_in_seed + s` and a fit of seed `fit.seed + s`. Assignments are keyed by the run's
    run_dir (`<cell>/seed<s>`)."""
    ms = mentor_settings(params.raw)
    study = ms["study"]
    if study not in params.studies():
        return {"study": study, "settings": ms, "assignments": {}, "dd": {}, "pd": False,
                "pilots": [], "forgetting": {}}
    # + the study's reading-sensitivity runs (study `sensitivity`), so that their cells get mentors too
    runs = expand_study(params, study) + sensitivity_runs(params, study)
    per_seed = bool(ms["dd"]["per_seed"])
    assignments: dict[str, str] = {}
    dd: dict[str, dict[str, Any]] = {}
    keys: dict[tuple, str] = {}
    forgetting: dict[str, list[tuple[float, str]]] = {}
    pilots: dict[str, RunSpec] = {}
    need_pd = False
    for spec in runs:
        if spec.method_family == "mentornet":
            mp = {**_spade_defaults(), **spec.method_params}
            if mp["curriculum"] == "pd":
                need_pd = True
                assignments[spec.run_dir] = "pd"
                continue
            source = mp["transfer_from"].get(spec.dataset, spec.dataset)
            if source not in params.raw["datasets"]:
                raise ConfigError(f"methods.{spec.method}.transfer_from: unknown dataset {source!r}")
            rate = spec.noise[1]
            src = _source_spec(runs, source, spec.model, rate, spec.seed if per_seed else None)
            if src is None:
                raise ConfigError(f"methods.{spec.method}.transfer_from: {source!r} has no run in "
                                  f"study {study!r} to take its StudentNet recipe from")
            # the noisy labels the mentor learns from: the run's own (per seed) or the source's
            noise = spec.noise if source == spec.dataset and per_seed else _noise_at(params, src, rate)
            seed = spec.seed if per_seed else None
            key = (source, src.model, noise, seed)
            if key not in keys:
                name = dd_name(source, src.model, rate, seed)
                if name in dd:
                    raise ConfigError(f"mentor: two DD mentors named {name!r} (noise variants "
                                      f"{dd[name]['noise']} and {noise}); set mentor.dd.per_seed")
                burn_seed = int(ms["dd"]["burn_in_seed"]) + (spec.seed if per_seed else 0)
                fit_seed = int(ms["fit"]["seed"]) + (spec.seed if per_seed else 0)
                rec = replace(src, study=PILOT_STUDY,
                              cell=f"burnin-{cell_name(source, src.model, rate, 'record')}",
                              noise=noise, method="mentornet_record", method_family="mentornet_record",
                              method_params={"ema_decay": mp["ema_decay"], "percentile": mp["percentile"],
                                             "record_fraction": ms["dd"]["record_fraction"],
                                             "net": ms["net"], "fit": {**ms["fit"], "seed": fit_seed}},
                              seed=burn_seed, train=copy.deepcopy(src.train))
                keys[key] = name
                dd[name] = {"dataset": source, "model": src.model, "rate": rate, "noise": noise,
                            "run_seed": seed, "burn_in_seed": burn_seed,
                            "fit_seed": fit_seed, "record": rec}
                pilots[rec.run_dir] = rec
            assignments[spec.run_dir] = keys[key]
        elif spec.method_family == "forgetting" and float(spec.method_params.get("dropout", -1)) < 0:
            forgetting[spec.cell] = []
            for g in forgetting_rates(ms["forgetting"]["keep_grid"]):
                cell = f"forgetting-{spec.cell}-d{g:g}"
                pilots[cell] = replace(spec, study=PILOT_STUDY, cell=cell,
                                       method_params={**spec.method_params, "dropout": float(g)},
                                       seed=int(ms["forgetting"]["selection_seed"]))
                forgetting[spec.cell].append((float(g), cell))
    return {"study": study, "settings": ms, "assignments": assignments, "dd": dd, "pd": need_pd,
            "pilots": list(pilots.values()), "forgetting": forgetting}


def prop1_summary(mentors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Proposition 1 over mentors (one per seed, noise rate, ...): the violation fraction at
    fixed lambda as {value, lo, hi} (mean, t-interval over the mentors; stats.mean_ci; one
    mentor bounds nothing: [0, 1]) and max."""
    v = [m["proposition1"]["violations_fixed_lambda"] for m in mentors.values()]
    mean, sd, lo, hi = mean_ci(v, bounds=(0.0, 1.0))
    if len(v) < 2:
        lo, hi = 0.0, 1.0
    return {"prop1_violations_fixed_lambda": {"value": mean if v else None, "lo": lo, "hi": hi,
                                              "sd": sd, "n": len(v)},
            "prop1_violations_fixed_lambda_max": float(np.max(v)) if v else None,
            "mentors": sorted(mentors)}


def _noise_at(params: Params, src: RunSpec, rate: float) -> tuple[str, float, int]:
    """`src`'s noise variant at `rate`: its own when the rates agree, else the draw its run seed
    would have at that rate (config.run_noise_seed)."""
    if src.noise[1] == rate:
        return src.noise
    noise = params.raw["noise"]
    return (src.noise[0], rate, run_noise_seed(int(noise.get("seed", 0)), src.seed, rate,
                                               bool(noise.get("per_seed", True))))


def forgetting_rates(keep_grid: list[float]) -> list[float]:
    """Dropout rates of the Forgetting pilots: 1 - each keep probability, smallest rate first."""
    return sorted({round(1.0 - float(k), 6) for k in keep_grid})


def _spade_defaults() -> dict[str, Any]:

    return dict(MentorNetSPADE.defaults)


def _source_spec(runs: list[RunSpec], dataset: str, model: str, rate: float,
                 seed: int | None) -> RunSpec | None:
    """The recipe of the StudentNet that burns in on `dataset`: a run of the study on that
    dataset, preferring the same model, the plain FullModel method, the same noise rate and,
    for a per-seed mentor, the same run seed (whose noise variant it then has)."""
    cands = [r for r in runs if r.dataset == dataset]
    cands.sort(key=lambda r: (r.model != model, seed is not None and r.seed != seed,
                              r.noise[1] != rate, r.method_family != "fullmodel"))
    return cands[0] if cands else None


def run(params: Params, prepared_root: str = "data/prepared", results_root: str = "results") -> dict[str, Any]:
    """Execute the stage; returns the summary written to results/mentors/summary.json."""
    out = Path(results_root) / "mentors"
    p = plan(params)
    ms = p["settings"]

    torch.set_num_threads(1)  # the mentor is tiny: one thread beats two (and leaves a core free)
    t0 = time.perf_counter()
    if p["pilots"]:
        run_study(params, PILOT_STUDY, prepared_root, str(out), runs=p["pilots"])
    print(f"mentor stage: {len(p['pilots'])} pilot runs (burn-in + Forgetting) "
          f"{time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"study": p["study"], "profile": params.profile_name,
                               "scale": params.scale, "settings": ms, "mentors": {}}
    fit_meta = {"fit": ms["fit"], "net": ms["net"]}
    nets, files = {}, {}
    if p["pd"]:
        net = build_mentor(ms["net"], seed=int(ms["fit"]["seed"]))
        stats = fit_pd_mentor(net, ms["pd"], ms["fit"])
        save_mentor(out / "pd.pt", net, {**fit_meta, "kind": "pd", "pd": ms["pd"], "stats": stats})
        nets["pd"], files["pd"] = net, out / "pd.pt"
        summary["mentors"]["pd"] = {"kind": "pd", "stats": stats}
    for name, d in sorted(p["dd"].items()):   # fitted by its burn-in pilot (mentornet_record)
        run_dir = out / PILOT_STUDY / d["record"].run_dir
        net, fitted = load_mentor(run_dir / "mentor.pt")
        about = {"kind": "dd", "dataset": d["dataset"], "model": d["model"], "noise_rate": d["rate"],
                 "noise": list(d["noise"]), "run_seed": d["run_seed"],
                 "burn_in_seed": d["burn_in_seed"], "fit_seed": d["fit_seed"],
                 "fitted_epochs": fitted["fitted_epochs"], "stats": fitted["stats"]}
        save_mentor(out / f"{name}.pt", net, {**fit_meta, **about, "burn_in_run": str(run_dir)})
        nets[name], files[name] = net, out / f"{name}.pt"
        summary["mentors"][name] = about
    if "pd" in nets:
        summary["mentors"]["pd"]["eq7_error"] = pd_surface_error(nets["pd"], ms["pd"], ms["surface"])
    print(f"mentor stage: {len(nets)} mentor fits {time.perf_counter() - t0:.1f} s")
    for name, net in nets.items():
        summary["mentors"][name]["proposition1"] = prop1_violations(net, ms["surface"])
    summary["mentornet_dd"] = prop1_summary({n: m for n, m in summary["mentors"].items()
                                             if m["kind"] == "dd"})
    if "pd" in nets:
        summary["mentornet_pd"] = {**prop1_summary({"pd": summary["mentors"]["pd"]}),
                                   "eq7_error": summary["mentors"]["pd"]["eq7_error"]}
    # Surfaces as data (the report redraws Fig. 4 from these) and as a figure here (PD and the
    # DD mentors of the first run seed; every mentor's surface is in its CSV).
    loss, diff = surface_grid(ms["surface"])
    for name, net in nets.items():
        rows = []
        for e in ms["surface"]["epochs"]:
            v = surface(net, loss, diff, int(e))
            for i, l in enumerate(loss):
                for j, dv in enumerate(diff):
                    rows.append((int(e), round(float(l), 6), round(float(dv), 6), round(float(v[i, j]), 6)))
        atomic_write_text(out / f"surface_{name}.csv", pd.DataFrame(
            rows, columns=["epoch", "loss", "loss_diff", "weight"]).to_csv(index=False))
    if nets:
        shown = figure_mentors(summary["mentors"])
        plot_surfaces({n: nets[n] for n in shown}, ms["surface"], out / "curriculum_surface.png")
    # Forgetting: best validation accuracy of the pilots (ties -> the smaller dropout rate).
    selection: dict[str, Any] = {}
    for cell, grid in sorted(p["forgetting"].items()):
        scores = []
        for g, pilot in grid:
            rec = read_json(out / PILOT_STUDY / pilot / f"seed{int(ms['forgetting']['selection_seed'])}" / "metrics.json")
            scores.append((rec.get("reported", {}).get("val_acc", float("-inf")), -g, g))
        best = max(scores)
        selection[cell] = {"dropout": best[2], "keep_prob": round(1.0 - best[2], 6), "val_acc": best[0],
                           "grid": {f"{g:g}": s for s, _, g in scores},
                           "seed": int(ms["forgetting"]["selection_seed"])}
    write_json(out / "forgetting_selection.json", selection)
    summary["forgetting"] = selection
    assignments = {cell: {"name": name, "path": str(files[name]), "sha256": sha256_file(files[name])}
                   for cell, name in sorted(p["assignments"].items())}
    write_json(out / "assignments.json", assignments)
    write_json(out / "summary.json", summary)
    return summary
