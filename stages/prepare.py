"""Stage `prepare`: build, split and noise-corrupt every dataset the active profile uses.

Reads: params.yaml (profile, datasets, noise), the dataset sources (embedded digits, generated
Gaussians, ImageFolder archives, torchvision downloads under data/raw/). Writes:
data/prepared/<dataset>/ (uint8 images, labels, split and clean-subset indices, noisy labels per
noise variant, manifest.json with checksums and the realised noise). Built in a temp dir and
swapped in: a failure leaves the previous data/prepared untouched."""
import argparse
import shutil
import tempfile
from pathlib import Path

from trainrepro.cli import guarded
from trainrepro.config import load_params, noise_variants
from trainrepro.data.prepared import prepare_dataset
from trainrepro.papers import load_all

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/prepared")
    ap.add_argument("--raw", default="data/raw")
    args = ap.parse_args()
    params = load_params(args.params)
    needed = noise_variants(params)
    # Build everything in a temp dir beside the output, then swap: a failure touches nothing.
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".prepared.", dir=out.parent))
    try:
        for name, variants in sorted(needed.items()):
            m = prepare_dataset(name, params.raw["datasets"][name], variants, tmp / name, args.raw)
            rates = ", ".join(f"{k}: {v['realised_wrong_rate']:.3f}" for k, v in m["noise"].items())
            print(f"prepared {name}: {m['sizes']}  realised wrong-label rates {rates}")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


if __name__ == "__main__":
    guarded(main)
