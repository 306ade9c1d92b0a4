"""Stage `validate`: check the whole params.yaml before any other stage can touch an output.

Reads: params.yaml (all of it), the code's registries. Writes: data/params-valid.txt, a fixed
text every other stage depends on (its content never changes, so a valid edit re-runs only
the stages whose own params changed), and data/active-profile.json, the active profile's
definition with YAML anchors resolved: the other stages depend on it instead of the whole
`profiles` section, so an edit to another profile re-runs nothing and dvc.lock records the
profiles once (in this stage) rather than once per stage. A mistake (unknown or misspelled key at any level, a
wrong type, an out-of-range value, an unknown name in a study list, a profile that references
an undefined entry, a paper.yaml `readings:` entry that does not fit) exits 2 with one line naming the key path and the allowed values, and DVC
stops before any stage deletes its outputs."""
import argparse
import json
from pathlib import Path

from trainrepro.cli import guarded
from trainrepro.config import load_params
from trainrepro.io import atomic_write_text
from trainrepro.papers import load_all
from trainrepro.registry import PAPERS
from trainrepro.sensitivity import plan

load_all()  # every paper registers its methods, params sections and report writers

STAMP = "params.yaml passed trainrepro's validation (this file's content never changes)\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/params-valid.txt")
    ap.add_argument("--profile-out", default="data/active-profile.json")
    args = ap.parse_args()
    params = load_params(args.params)
    plan(params, list(PAPERS))  # every paper's `readings:` (paper.yaml), against the active profile
    out = Path(args.out)
    if not out.exists() or out.read_text() != STAMP:
        atomic_write_text(out, STAMP)
    active = json.dumps({"profile": params.profile_name, "definition": params.profile},
                        indent=1, sort_keys=True) + "\n"
    prof = Path(args.profile_out)
    if not prof.exists() or prof.read_text() != active:
        atomic_write_text(prof, active)
    print(f"validate: {args.params} is valid")


if __name__ == "__main__":
    guarded(main)
