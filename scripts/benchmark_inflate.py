"""Time inflating a 2D SwinV2 checkpoint into a 3D variant: read + inflate + strict load.

The 2D checkpoint is a freshly initialised timm SwinV2 of the variant's width, depths and heads
with an ImageNet-1k head (so the 400-class head is re-initialised, as in real use), written to
a temporary file, in each ``--format``. Prints the best of ``--repeats`` runs per step.

    python scripts/benchmark_inflate.py --model videoswinv2_base --format pth
    python scripts/benchmark_inflate.py --docs docs/benchmarks   # both formats, into the docs
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from docs_output import DocsResults, grouped_bar_figure
from timm.models.swin_transformer_v2 import SwinTransformerV2

from videoswinv2 import create_model
from videoswinv2.checkpoints import inflate_state_dict, read_2d_checkpoint, save_state_dict
from videoswinv2.record import VARIANTS


def measure(model_name: str, file_format: str, repeats: int) -> dict:
    """Best-of-``repeats`` seconds of each step for one file format, and what the report counted."""
    variant = VARIANTS[model_name]
    state_dict = SwinTransformerV2(img_size=256, window_size=16, num_classes=1000, **variant).state_dict()
    model = create_model(model_name)
    steps: dict[str, list[float]] = {"read": [], "inflate": [], "load": [], "total": []}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"swinv2_2d.{file_format}"
        save_state_dict(state_dict, path)
        size_mb = path.stat().st_size / 2**20
        for _ in range(repeats):
            start = time.perf_counter()
            ckpt = read_2d_checkpoint(path)
            read = time.perf_counter()
            inflated, report = inflate_state_dict(ckpt, model.state_dict())
            inflate = time.perf_counter()
            model.load_state_dict(inflated, strict=True)
            load = time.perf_counter()
            steps["read"].append(read - start)
            steps["inflate"].append(inflate - read)
            steps["load"].append(load - inflate)
            steps["total"].append(load - start)
    return {
        "format": file_format,
        "size_mb": size_mb,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "seconds": {name: min(values) for name, values in steps.items()},
        "counts": (len(report.copied), len(report.inflated), len(report.dropped), len(report.reinitialised)),
    }


def report(results: list[dict], args: argparse.Namespace) -> None:
    """Print the figures; with ``--docs``, also write a table and a plot into the documentation."""
    setting = (
        f"{args.model}: {results[0]['params_m']:.1f}M parameters; {torch.get_num_threads()} threads; "
        f"best of {args.repeats}"
    )
    print(setting)
    for result in results:
        print(f"  2D checkpoint {result['size_mb']:.0f} MiB .{result['format']}")
        for name, seconds in result["seconds"].items():
            print(f"    {name:8s} {seconds:7.3f} s")
    copied, inflated, dropped, reinitialised = results[0]["counts"]
    counts = (
        f"copied {copied}, inflated {inflated}, dropped {dropped}, re-initialised {reinitialised} tensors"
    )
    print(f"  {counts}")
    if not args.docs:
        return
    steps = list(results[0]["seconds"])
    docs = DocsResults("inflate")
    docs.text(f"{setting}; {counts}. Seconds per step:")
    docs.table(
        ["2D checkpoint", *steps],
        [
            [f".{r['format']}, {r['size_mb']:.0f} MiB", *(f"{r['seconds'][s]:.3f}" for s in steps)]
            for r in results
        ],
    )
    docs.figure(
        grouped_bar_figure(
            [f".{r['format']}" for r in results],
            {step: [r["seconds"][step] for r in results] for step in steps},
            ylabel="seconds (best of the repeats)",
            title=f"inflating a 2D checkpoint into {args.model}",
        ),
        "seconds per step of inflation, per file format",
    )
    docs.write(args.docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="videoswinv2_base", choices=sorted(VARIANTS))
    parser.add_argument(
        "--format", nargs="+", default=["pth", "safetensors"], choices=("pth", "safetensors"), dest="formats"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--docs", type=Path, metavar="FOLDER", help="also write the table and a plot there (docs/benchmarks)"
    )
    args = parser.parse_args()
    report([measure(args.model, file_format, args.repeats) for file_format in args.formats], args)


if __name__ == "__main__":
    main()
