"""The `mentor` stage: everything the MentorNet study needs before training.

1. Plan: from the active profile's MentorNet study, which mentors are needed (PD once; DD per
   (source dataset, StudentNet, noise rate), the source being the run's own dataset or the
   method's `transfer_from` for transfer) and which Forgetting cells need a dropout rate.
2. Pilot runs through the ordinary runner (cached by config hash, 2 processes on CPU):
   DD burn-in StudentNets (`mentornet_record`, v = 1, features of the clean subset recorded)
   and Forgetting pilots (one run per grid value, selection seed, best validation accuracy).
3. Fit MentorNet PD (Eq. 7 targets on a grid, MSE) and every DD mentor (BCE, v* = 1[clean]).
4. Write results/mentors/: <mentor>.pt, assignments.json (cell -> mentor file + sha256),
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

from ...config import Params, RunSpec, cell_name, expand_study
from ...io import atomic_write_text, read_json, sha256_file, write_json
from ...registry import ConfigError
from ...runner import run_study
from ...sensitivity import sensitivity_runs
from .fit import fit_mentor, fit_pd_mentor
from .net import build_mentor, save_mentor
from .settings import mentor_settings
from .spade import MentorNetSPADE
from .surface import nonincreasing_violations, plot_surfaces, surface, surface_grid

PILOT_STUDY = "pilots"


def dd_name(dataset: str, model: str, rate: float) -> str:
    return f"dd-{dataset}-{model}-n{rate:g}"


def plan(params: Params) -> dict[str, Any]:
    """Mentors to fit, pilot runs to train and the cell -> mentor assignments of the study."""
    ms = mentor_settings(params.raw)
    study = ms["study"]
    if study not in params.studies():
        return {"study": study, "settings": ms, "assignments": {}, "dd": {}, "pd": False,
                "pilots": [], "forgetting": {}}
    # + the study's reading-sensitivity runs (study `sensitivity`), so that their cells get mentors too
    runs = expand_study(params, study) + sensitivity_runs(params, study)
    assignments: dict[str, str] = {}
    dd: dict[str, dict[str, Any]] = {}
    forgetting: dict[str, list[tuple[float, str]]] = {}
    pilots: dict[str, RunSpec] = {}
    need_pd = False
    for spec in runs:
        if spec.method_family == "mentornet":
            mp = {**_spade_defaults(), **spec.method_params}
            if mp["curriculum"] == "pd":
                need_pd = True
                assignments[spec.cell] = "pd"
                continue
            source = mp["transfer_from"].get(spec.dataset, spec.dataset)
            if source not in params.raw["datasets"]:
                raise ConfigError(f"methods.{spec.method}.transfer_from: unknown dataset {source!r}")
            src = _source_spec(runs, source, spec.model)
            if src is None:
                raise ConfigError(f"methods.{spec.method}.transfer_from: {source!r} has no run in "
                                  f"study {study!r} to take its StudentNet recipe from")
            rate = spec.noise[1]
            name = dd_name(source, src.model, rate)
            assignments[spec.cell] = name
            if name not in dd:
                rec = replace(src, study=PILOT_STUDY, cell=f"burnin-{cell_name(source, src.model, rate, 'record')}",
                              noise=(src.noise[0], rate, src.noise[2]), method="mentornet_record",
                              method_family="mentornet_record",
                              method_params={"ema_decay": mp["ema_decay"], "percentile": mp["percentile"]},
                              seed=int(ms["dd"]["burn_in_seed"]), train=copy.deepcopy(src.train))
                dd[name] = {"dataset": source, "model": src.model, "rate": rate, "record": rec}
                pilots[rec.cell] = rec
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


def forgetting_rates(keep_grid: list[float]) -> list[float]:
    """Dropout rates of the Forgetting pilots: 1 - each keep probability, smallest rate first."""
    return sorted({round(1.0 - float(k), 6) for k in keep_grid})


def _spade_defaults() -> dict[str, Any]:

    return dict(MentorNetSPADE.defaults)


def _source_spec(runs: list[RunSpec], dataset: str, model: str) -> RunSpec | None:
    """The recipe of the StudentNet that burns in on `dataset`: a run of the study on that
    dataset, preferring the same model and the plain FullModel method."""
    cands = [r for r in runs if r.dataset == dataset]
    cands.sort(key=lambda r: (r.model != model, r.method_family != "fullmodel"))
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
    nets, files = {}, {}
    fit_meta = {"fit": ms["fit"], "net": ms["net"]}
    if p["pd"]:
        net = build_mentor(ms["net"], seed=int(ms["fit"]["seed"]))
        stats = fit_pd_mentor(net, ms["pd"], ms["fit"])
        meta = {**fit_meta, "kind": "pd", "pd": ms["pd"], "stats": stats}
        save_mentor(out / "pd.pt", net, meta)
        nets["pd"] = net
        summary["mentors"]["pd"] = {"kind": "pd", "stats": stats}
    for name, d in sorted(p["dd"].items()):
        feats = np.load(out / PILOT_STUDY / d["record"].run_dir / "features.npz")
        f = {k: torch.as_tensor(feats[k]) for k in ("loss", "loss_diff")}
        f["epoch"] = torch.as_tensor(feats["epoch"]).long()
        net = build_mentor(ms["net"], seed=int(ms["fit"]["seed"]))
        stats = fit_mentor(net, f, torch.as_tensor(feats["target"]), "bce", ms["fit"])
        meta = {**fit_meta, "kind": "dd", "dataset": d["dataset"], "model": d["model"],
                "noise_rate": d["rate"], "burn_in_run": str(out / PILOT_STUDY / d["record"].run_dir),
                "stats": stats}
        save_mentor(out / f"{name}.pt", net, meta)
        nets[name] = net
        summary["mentors"][name] = {"kind": "dd", "dataset": d["dataset"], "model": d["model"],
                                    "noise_rate": d["rate"], "stats": stats}
    print(f"mentor stage: {len(nets)} mentor fits {time.perf_counter() - t0:.1f} s")
    for name, net in nets.items():
        summary["mentors"][name]["proposition1"] = nonincreasing_violations(net, ms["surface"])
        files[name] = out / f"{name}.pt"
    dd_viol = [m["proposition1"]["nonincreasing_fraction_violations"]
               for m in summary["mentors"].values() if m["kind"] == "dd"]
    summary["mentornet_dd"] = {
        "nonincreasing_fraction_violations": float(np.mean(dd_viol)) if dd_viol else None,
        "nonincreasing_fraction_violations_max": float(np.max(dd_viol)) if dd_viol else None,
        "mentors": sorted(n for n in nets if n != "pd")}
    if "pd" in nets:
        summary["mentornet_pd"] = {"nonincreasing_fraction_violations":
                                   summary["mentors"]["pd"]["proposition1"]["nonincreasing_fraction_violations"]}
    # Surfaces as data (the report redraws Fig. 4 from these) and as a figure here.
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
        plot_surfaces(nets, ms["surface"], out / "curriculum_surface.png")
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
