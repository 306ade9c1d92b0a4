"""params.yaml: loading, validation (before any work) and expansion of the experiment matrix.

A profile (params `profile`) holds studies; a study is a list of blocks; a block is a product
datasets x noise rates x methods (x models), each cell run once per seed. A run's config is
resolved as: `train` defaults <- profile `train` <- block `train` <- method instance `train`.
A block's optional `tag` is appended to its cells' names (`<dataset>-<model>-n<rate>-<method>-<tag>`),
so blocks that run the same method with different `train` overrides (a learning-rate grid, batch
sizes) keep separate cells; the run index records it.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from .data import SOURCES
from .data.noise import NOISE_MODELS
from .methods import METHODS
from .models import MODELS, model_kwargs
from .optim import OPTIMIZERS, SCHEDULES, check_args, schedule_args
from .parallel import SLURM_CHOICES, SLURM_DEFAULTS
from .registry import PAPERS, ConfigError, check_value

# The core's sections; each paper adds its own (registry.Paper.sections).
TOP_LEVEL = ["profile", "runtime", "noise", "datasets", "train", "methods", "profiles"]

TRAIN_DEFAULTS: dict[str, Any] = {
    "model": "small_cnn", "model_args": {}, "epochs": 20, "batch_size": 64,
    "optimizer": "sgd", "optimizer_args": {}, "lr": 0.05, "weight_decay": 5e-4,
    "schedule": "cosine", "schedule_args": {}, "augment": "auto", "report_epoch": "best_val",
    "report_k": 5, "val_labels": "noisy", "grad_clip": 0.0, "compile": False,
    "checkpoint": True, "eval_batch_size": 1024,
    "kfold": 0,  # 0: the prepared fixed train/validation split; k >= 2: k-fold over train + validation,
                 # the run with seed s trains on fold s mod k (data/splits.py; LLb-SGD's 5-fold CV)
}
TRAIN_RANGES: dict[str, tuple] = {"epochs": (1, None), "batch_size": (1, None), "lr": (0.0, None),
                                  "weight_decay": (0.0, None), "report_k": (1, None),
                                  "grad_clip": (0.0, None), "eval_batch_size": (1, None),
                                  "kfold": (0, None)}
TRAIN_CHOICES: dict[str, list] = {"augment": ["auto", "none", "crop_flip"],
                                  "report_epoch": ["last", "best_val", "mean_last_k"],
                                  "val_labels": ["noisy", "clean"]}
RUNTIME_DEFAULTS = {"device": "auto", "workers": 2, "threads": 1, "progress": True, "gpus": "all",
                    "runs_per_gpu": 1, "executor": "local", "slurm": dict(SLURM_DEFAULTS)}
RUNTIME_RANGES = {"workers": (1, None), "threads": (1, None), "runs_per_gpu": (1, None)}
RUNTIME_CHOICES = {"device": ["auto", "cpu", "cuda"], "executor": ["local", "submitit"]}
SLURM_RANGES = {"gpus_per_job": (0, None), "cpus_per_job": (1, None), "mem_gb": (0, None),
                "time_min": (1, None), "array_parallelism": (1, None), "runs_per_job": (1, None),
                "max_requeues": (0, None)}
DATASET_COMMON = {"source": "", "val_fraction": 0.1, "test_fraction": 0.2,
                  "clean_fraction": 0.1, "data_seed": 0, "augment": "none"}
# Source-specific keys (type from the default; None = any type).
SOURCE_KEYS: dict[str, dict[str, Any]] = {
    "digits": {},
    "gaussians": {"layout": "separable", "n_per_class": 300, "scale": 1.0},
    "imagefolder": {"path": "", "sha256": "", "image_size": 0, "test_folder": "test", "storage": "auto"},
    "mnist": {"mirror": "", "md5": None, "root": ""},
    "cifar10": {"mirror": "", "md5": None, "root": ""},
    "cifar100": {"mirror": "", "md5": None, "root": ""},
    "svhn": {"mirror": "", "md5": None, "root": ""},
}


def _check(key: str, value: Any, default: Any, rng: tuple | None = None,
           choices: list | None = None) -> None:
    check_value(key, value, default, rng, choices)


def _check_keys(where: str, got: dict, allowed: list[str] | set[str]) -> None:
    if not isinstance(got, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(got).__name__}")
    for k in got:
        if k not in allowed:
            raise ConfigError(f"{where}.{k}: unknown key; allowed: {', '.join(sorted(allowed))}")


def validate_train(where: str, t: dict[str, Any]) -> None:
    """Check a (partial) train section: keys, types, ranges, registry names."""
    _check_keys(where, t, TRAIN_DEFAULTS)
    for k, v in t.items():
        _check(f"{where}.{k}", v, TRAIN_DEFAULTS[k], TRAIN_RANGES.get(k), TRAIN_CHOICES.get(k))
    if t.get("kfold") == 1:
        raise ConfigError(f"{where}.kfold: 1 is not allowed; allowed: 0 (fixed split) or >= 2 folds")
    if "model" in t:
        MODELS.get_checked(t["model"], f"{where}.model")
    if "optimizer" in t:
        spec = OPTIMIZERS.get_checked(t["optimizer"], f"{where}.optimizer")
        check_args(spec.args, t.get("optimizer_args", {}), f"{where}.optimizer_args", t["optimizer"])
    if "schedule" in t:
        SCHEDULES.get_checked(t["schedule"], f"{where}.schedule")
        check_args(schedule_args(t["schedule"]), t.get("schedule_args", {}), f"{where}.schedule_args",
                   t["schedule"])


def validate_runtime(rt: dict[str, Any]) -> None:
    """runtime: device, CPU workers, GPU slots (gpus x runs_per_gpu), executor and its slurm block."""
    _check_keys("runtime", rt, RUNTIME_DEFAULTS)
    for k, v in rt.items():
        if k == "gpus":
            ok = v == "all" or (isinstance(v, list) and v and len(set(v)) == len(v) and all(
                isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in v))
            if not ok:
                raise ConfigError(f"runtime.gpus: {v!r} is not allowed; allowed: 'all' or a non-empty "
                                  "list of distinct GPU indices >= 0 (e.g. [0, 1])")
        elif k == "slurm":
            _check_keys("runtime.slurm", v, SLURM_DEFAULTS)
            for sk, sv in v.items():
                _check(f"runtime.slurm.{sk}", sv, SLURM_DEFAULTS[sk], SLURM_RANGES.get(sk),
                       SLURM_CHOICES.get(sk))
        else:
            _check(f"runtime.{k}", v, RUNTIME_DEFAULTS[k], RUNTIME_RANGES.get(k), RUNTIME_CHOICES.get(k))


def validate_dataset(where: str, d: dict[str, Any]) -> None:
    if not isinstance(d, dict) or "source" not in d:
        raise ConfigError(f"{where}.source: missing; allowed: {', '.join(sorted(SOURCES))}")
    SOURCES.get_checked(d["source"], f"{where}.source")
    specific = SOURCE_KEYS.get(d["source"], {})
    _check_keys(where, d, set(DATASET_COMMON) | set(specific))
    for k, v in d.items():
        default = DATASET_COMMON.get(k, specific.get(k))
        rng = (0.0, 0.9) if k.endswith("_fraction") else (0, None) if k in ("data_seed", "n_per_class", "image_size") else None
        choices = {"augment": ["none", "crop_flip"], "layout": ["separable", "overlapping"],
                   "storage": ["auto", "memory", "memmap"]}.get(k)
        _check(f"{where}.{k}", v, default, rng, choices)


@dataclass
class Params:
    raw: dict[str, Any]

    @property
    def profile_name(self) -> str:
        return self.raw["profile"]

    @property
    def profile(self) -> dict[str, Any]:
        return self.raw["profiles"][self.profile_name]

    @property
    def scale(self) -> str:
        return self.profile.get("scale", self.profile_name)

    @property
    def runtime(self) -> dict[str, Any]:
        rt = {**RUNTIME_DEFAULTS, **self.raw.get("runtime", {})}
        return {**rt, "slurm": {**SLURM_DEFAULTS, **rt["slurm"]}}

    def studies(self) -> list[str]:
        return list(self.profile.get("studies", {}))


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and fully validate params.yaml; raises ConfigError naming the first bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    validate(raw)
    return Params(raw)


def paper_sections() -> dict[str, Callable[[Any, dict[str, Any]], None]]:
    """Top-level params sections owned by the registered papers, with their validators."""
    return {k: fn for paper in PAPERS.values() for k, fn in paper.sections.items()}


def validate(raw: dict[str, Any]) -> None:
    if not isinstance(raw, dict):
        raise ConfigError("params.yaml: expected a mapping at the top level")
    if not PAPERS:
        raise ConfigError("no paper is registered: call trainrepro.papers.load_all() before "
                          "validating params (the stage scripts do)")
    sections = paper_sections()
    _check_keys("params", raw, set(TOP_LEVEL) | set(sections))
    for k in TOP_LEVEL:
        if k not in raw:
            raise ConfigError(f"{k}: missing top-level section")
    validate_runtime(raw["runtime"])
    _check_keys("noise", raw["noise"], ["kind", "seed", "per_seed"])
    if not isinstance(raw["noise"].get("per_seed", True), bool):
        raise ConfigError(f"noise.per_seed: {raw['noise']['per_seed']!r} is not true or false")
    NOISE_MODELS.get_checked(raw["noise"].get("kind", "symmetric_incl"), "noise.kind")
    _check("noise.seed", raw["noise"].get("seed", 0), 0, (0, None))
    for name, d in raw["datasets"].items():
        validate_dataset(f"datasets.{name}", d)
    validate_train("train", raw["train"])
    for name, m in raw["methods"].items():
        where = f"methods.{name}"
        if not isinstance(m, dict) or "family" not in m:
            raise ConfigError(f"{where}.family: missing; allowed: {', '.join(sorted(METHODS))}")
        cls = METHODS.get_checked(m["family"], f"{where}.family")
        if "train" in m:
            validate_train(f"{where}.train", m["train"])
        cls.validate_params({k: v for k, v in m.items() if k not in ("family", "train")}, where)
    if raw["profile"] not in raw["profiles"]:
        raise ConfigError(f"profile: unknown profile {raw['profile']!r}; allowed: "
                          f"{', '.join(sorted(raw['profiles']))}")
    for pname, prof in raw["profiles"].items():
        validate_profile(f"profiles.{pname}", prof, raw)
    for key, fn in sections.items():
        if key in raw:
            fn(raw[key], raw)


def validate_profile(where: str, prof: dict[str, Any], raw: dict[str, Any]) -> None:
    _check_keys(where, prof, ["scale", "label", "train", "studies", "sensitivity"])
    if "sensitivity" in prof:
        validate_sensitivity(f"{where}.sensitivity", prof["sensitivity"])
    if "train" in prof:
        validate_train(f"{where}.train", prof["train"])
    for study, blocks in prof.get("studies", {}).items():
        if not isinstance(blocks, list):
            raise ConfigError(f"{where}.studies.{study}: expected a list of blocks")
        for i, b in enumerate(blocks):
            bw = f"{where}.studies.{study}[{i}]"
            _check_keys(bw, b, ["datasets", "noise", "methods", "seeds", "models", "train", "tag"])
            if "tag" in b and not (isinstance(b["tag"], str) and b["tag"].replace("_", "").replace(".", "").isalnum()):
                raise ConfigError(f"{bw}.tag: expected a name of letters, digits, '_' and '.', got {b['tag']!r}")
            for key in ("datasets", "noise", "methods", "seeds"):
                if key not in b or not isinstance(b[key], list) or not b[key]:
                    raise ConfigError(f"{bw}.{key}: expected a non-empty list")
            for d in b["datasets"]:
                if d not in raw["datasets"]:
                    raise ConfigError(f"{bw}.datasets: unknown dataset {d!r}; allowed: "
                                      f"{', '.join(sorted(raw['datasets']))}")
            for r in b["noise"]:
                _check(f"{bw}.noise", r, 0.0, (0.0, 1.0))
            for m in b["methods"]:
                if m not in raw["methods"]:
                    raise ConfigError(f"{bw}.methods: unknown method {m!r}; allowed: "
                                      f"{', '.join(sorted(raw['methods']))}")
            for s in b["seeds"]:
                _check(f"{bw}.seeds", s, 0, (0, None))
            if "models" in b:
                for m in b["models"]:
                    MODELS.get_checked(m, f"{bw}.models")
            if "train" in b:
                validate_train(f"{bw}.train", b["train"])
            for m in b["methods"]:
                train = resolved_train(raw, prof, b, m)
                for model in b.get("models", [train["model"]]):
                    validate_resolved(f"{bw} (method {m}, model {model})", {**train, "model": model})


def validate_sensitivity(where: str, value: Any) -> None:
    """A profile's `sensitivity:` (reading sensitivity, sensitivity.py): {papers: [registered
    paper names], seeds: [ints >= 0] (optional; default: each varied cell's own seeds)}."""
    _check_keys(where, value, ["papers", "seeds"])
    for p in value.get("papers") or []:
        PAPERS.get_checked(p, f"{where}.papers")
    for s in value.get("seeds") or []:
        _check(f"{where}.seeds", s, 0, (0, None))


def resolved_train(raw: dict[str, Any], prof: dict[str, Any], block: dict[str, Any],
                   method: str) -> dict[str, Any]:
    """A run's train settings: defaults <- params train <- profile <- block <- method instance."""
    return {**TRAIN_DEFAULTS, **raw["train"], **prof.get("train", {}), **block.get("train", {}),
            **raw["methods"][method].get("train", {})}


def validate_resolved(where: str, t: dict[str, Any]) -> None:
    """Arguments that only make sense together: model_args against the model that runs them,
    optimizer_args / schedule_args against the optimizer / schedule they end up with."""
    allowed = model_kwargs(t["model"])
    for k in t["model_args"]:
        if k not in allowed:
            raise ConfigError(f"{where}: model_args.{k}: unknown argument of model {t['model']!r}; "
                              f"allowed: {', '.join(sorted(allowed)) or '(none)'}")
    check_args(OPTIMIZERS[t["optimizer"]].args, t["optimizer_args"], f"{where}: optimizer_args",
               t["optimizer"])
    check_args(schedule_args(t["schedule"]), t["schedule_args"], f"{where}: schedule_args",
               t["schedule"])


@dataclass
class RunSpec:
    """One training run: a cell of the matrix and one seed."""

    study: str
    cell: str
    dataset: str
    noise: tuple[str, float, int]
    method: str
    model: str
    seed: int
    train: dict[str, Any]
    method_family: str
    method_params: dict[str, Any]
    dataset_cfg: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> str:
        return f"{self.cell}/seed{self.seed}"


def cell_name(dataset: str, model: str, rate: float, method: str) -> str:
    return f"{dataset}-{model}-n{rate:g}-{method}"


def run_noise_seed(noise_seed: int, run_seed: int, rate: float, per_seed: bool = True) -> int:
    """The seed of the noisy labels a run trains on. With `per_seed` (the default) each run seed
    draws its own labels, from a seed derived from (noise.seed, run seed) by a SeedSequence
    (never equal to the training seed's stream), so intervals over seeds include the variance of
    the noise draw; without it every seed shares the draw of `noise.seed`. Clean data (rate 0)
    has no draw: always `noise.seed`."""
    if not per_seed or rate == 0:
        return int(noise_seed)
    return int(np.random.SeedSequence([int(noise_seed), int(run_seed), 0x6E6F]).generate_state(1)[0] % 2**31)


def expand_study(params: Params, study: str) -> list[RunSpec]:
    """All runs of one study in the active profile, in matrix order."""
    raw = params.raw
    prof = params.profile
    if study not in prof.get("studies", {}):
        raise ConfigError(f"study {study!r} is not in profile {params.profile_name!r}; "
                          f"it has: {', '.join(prof.get('studies', {})) or '(none)'}")
    kind, nseed = raw["noise"].get("kind", "symmetric_incl"), int(raw["noise"].get("seed", 0))
    per_seed = bool(raw["noise"].get("per_seed", True))
    runs: list[RunSpec] = []
    for block in prof["studies"][study]:
        for ds, rate, meth in itertools.product(block["datasets"], block["noise"], block["methods"]):
            m = raw["methods"][meth]
            base = resolved_train(raw, prof, block, meth)
            if base["augment"] == "auto":
                base["augment"] = raw["datasets"][ds].get("augment", "none")
            for model in block.get("models", [base["model"]]):
                for seed in block["seeds"]:
                    train = {**base, "model": model}
                    cell = cell_name(ds, model, rate, meth) + (f"-{block['tag']}" if block.get("tag") else "")
                    runs.append(RunSpec(
                        study=study, cell=cell, dataset=ds,
                        noise=(kind, float(rate), run_noise_seed(nseed, int(seed), float(rate), per_seed)),
                        method=meth, model=model, seed=int(seed),
                        train=train, method_family=m["family"],
                        method_params={k: v for k, v in m.items() if k not in ("family", "train")},
                        dataset_cfg=raw["datasets"][ds],
                        extra={"tag": block["tag"]} if block.get("tag") else {}))
    return runs


def noise_variants(params: Params) -> dict[str, list[tuple[str, float, int]]]:
    """dataset name -> noise variants the active profile needs (every study)."""
    out: dict[str, list[tuple[str, float, int]]] = {}
    for study in params.studies():
        for r in expand_study(params, study):
            out.setdefault(r.dataset, [])
            if r.noise not in out[r.dataset]:
                out[r.dataset].append(r.noise)
    return out


PACKAGE_ROOT = Path(__file__).resolve().parent
# Not part of any run's code: the report infrastructure (aggregate and report stages only).
NOT_TRAINING = ("report",)


def code_files(method_module: str) -> list[Path]:
    """The source files a run of a method defined in `method_module` can execute: every module
    of the core outside report/, plus, for a method of a paper package, that package's files
    (a test checks that every trainrepro module a run loads is among them)."""
    core = [f for f in sorted(PACKAGE_ROOT.rglob("*.py"))
            if f.relative_to(PACKAGE_ROOT).parts[0] not in NOT_TRAINING + ("papers",)]
    files = core + [PACKAGE_ROOT / "papers" / "__init__.py"]
    parts = method_module.split(".")
    if parts[:2] == ["trainrepro", "papers"] and len(parts) > 2:
        files += sorted((PACKAGE_ROOT / "papers" / parts[2]).rglob("*.py"))
    return files


@functools.lru_cache(maxsize=None)
def code_hash(method_module: str) -> str:
    """Hash of `code_files(method_module)`: names and contents."""
    h = hashlib.sha256()
    for f in code_files(method_module):
        h.update(str(f.relative_to(PACKAGE_ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
