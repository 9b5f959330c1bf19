"""Speed, FLOPs and memory of a videoswinv2 variant beside torchvision's swin3d of the same size.

    python scripts/benchmark_model.py --model videoswinv2_tiny --shape 2 3 16 224 224
    python scripts/benchmark_model.py --model videoswinv2_base --shape 8 3 32 224 224 --device cuda

Both models run on the same input in the same process, interleaved, so machine noise hits both;
the figure of merit is our time / torchvision's time. On CUDA both run under bf16 autocast.
GFLOPs are multiply-accumulates per clip (the convention of the Video Swin paper), counted by
torch's FlopCounterMode, which sees inside scaled_dot_product_attention.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import video as tv_video

from videoswinv2 import create_model, list_models

TORCHVISION_PEERS = {
    "videoswinv2_tiny": "swin3d_t",
    "videoswinv2_small": "swin3d_s",
    "videoswinv2_base": "swin3d_b",
}


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gmacs_per_clip(model: torch.nn.Module, x: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x[:1])
    return counter.get_total_flops() / 2 / 1e9


def timed(fn, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of ``fn()``."""
    sync(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - start, time.process_time() - start_cpu


def measure(model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> dict[str, float]:
    """One forward and one forward+backward, timed, plus peak memory of the latter on CUDA."""

    def forward() -> None:
        with torch.no_grad(), autocast(device):
            model(x)

    def forward_backward() -> None:
        with autocast(device):
            loss = model(x).float().logsumexp(-1).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    fwd, _ = timed(forward, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    fwd_bwd, fwd_bwd_cpu = timed(forward_backward, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"fwd": fwd, "fwd_bwd": fwd_bwd, "fwd_bwd_cpu": fwd_bwd_cpu, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="videoswinv2_tiny", choices=list_models())
    parser.add_argument(
        "--shape", type=int, nargs=5, default=[2, 3, 16, 224, 224], metavar=("B", "C", "T", "H", "W")
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after one warm-up round")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd videoswinv2")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(*args.shape, device=device)
    models: dict[str, torch.nn.Module] = {args.model: create_model(args.model).to(device)}
    peer = TORCHVISION_PEERS.get(args.model)
    if peer:
        models[f"torchvision {peer}"] = getattr(tv_video, peer)().to(device)
    if args.compile:
        models[f"{args.model} (compiled)"] = torch.compile(create_model(args.model).to(device))

    print(
        f"input {tuple(x.shape)} on {device} ({torch.get_num_threads()} CPU threads), "
        f"{'bf16 autocast' if device.type == 'cuda' else 'fp32'}, torch {torch.__version__}"
    )
    flops = {name: gmacs_per_clip(m, x) for name, m in models.items() if "compiled" not in name}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    for round_ in range(args.repeats + 1):
        # Interleaved, and in reversed order every other round, so that drifts in machine load and
        # allocator state (the first model of a round pays for fresh pages) hit every model alike.
        order = list(models.items())[:: 1 if round_ % 2 else -1]
        for name, model in order:
            result = measure(model, x, device)
            if round_ > 0:
                runs[name].append(result)

    header = f"{'model':<34}{'params (M)':>11}{'GFLOPs/clip':>13}{'fwd (s)':>10}{'fwd+bwd (s)':>13}{'peak (GiB)':>12}"
    print(header)
    print("-" * len(header))
    medians = {}
    for name, model in models.items():
        fwd = statistics.median(r["fwd"] for r in runs[name])
        fwd_bwd = statistics.median(r["fwd_bwd"] for r in runs[name])
        peak = max(r["peak_gib"] for r in runs[name])
        medians[name] = (fwd, fwd_bwd, statistics.median(r["fwd_bwd_cpu"] for r in runs[name]))
        params = sum(p.numel() for p in model.parameters()) / 1e6
        gflops = flops.get(name, float("nan"))
        print(f"{name:<34}{params:>11.2f}{gflops:>13.1f}{fwd:>10.3f}{fwd_bwd:>13.3f}{peak:>12.2f}")
    if peer:
        ours, theirs = medians[args.model], medians[f"torchvision {peer}"]
        print(
            f"\nratio videoswinv2 / torchvision (median of {args.repeats}): "
            f"forward {ours[0] / theirs[0]:.2f}x, forward+backward {ours[1] / theirs[1]:.2f}x "
            f"(process CPU time: {ours[2] / theirs[2]:.2f}x)"
        )
        paired = sorted(
            a["fwd_bwd"] / b["fwd_bwd"] for a, b in zip(runs[args.model], runs[f"torchvision {peer}"])
        )
        print(f"forward+backward ratio per round: {paired[0]:.2f}x .. {paired[-1]:.2f}x")


if __name__ == "__main__":
    main()
