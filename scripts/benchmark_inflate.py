"""Time inflating a 2D SwinV2 checkpoint into a 3D variant: read + inflate + strict load.

The 2D checkpoint is a freshly initialised timm SwinV2 of the variant's width, depths and heads
with an ImageNet-1k head (so the 400-class head is re-initialised, as in real use), written to
a temporary file. Prints the best of ``--repeats`` runs per step.

    python scripts/benchmark_inflate.py --model videoswinv2_base --format pth
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from timm.models.swin_transformer_v2 import SwinTransformerV2

from videoswinv2 import create_model
from videoswinv2.checkpoints import inflate_state_dict, read_2d_checkpoint, save_state_dict
from videoswinv2.record import VARIANTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="videoswinv2_base", choices=sorted(VARIANTS))
    parser.add_argument("--format", default="pth", choices=("pth", "safetensors"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    variant = VARIANTS[args.model]
    state_dict = SwinTransformerV2(img_size=256, window_size=16, num_classes=1000, **variant).state_dict()
    model = create_model(args.model)
    steps: dict[str, list[float]] = {"read": [], "inflate": [], "load": [], "total": []}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"swinv2_2d.{args.format}"
        save_state_dict(state_dict, path)
        size_mb = path.stat().st_size / 2**20
        for _ in range(args.repeats):
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

    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"{args.model}: {params:.1f}M parameters; 2D checkpoint {size_mb:.0f} MiB .{args.format}; "
        f"{torch.get_num_threads()} threads; best of {args.repeats}"
    )
    for name, seconds in steps.items():
        print(f"  {name:8s} {min(seconds):7.3f} s")
    print(
        f"  copied {len(report.copied)}, inflated {len(report.inflated)}, dropped {len(report.dropped)}, "
        f"re-initialised {len(report.reinitialised)} tensors"
    )


if __name__ == "__main__":
    main()
