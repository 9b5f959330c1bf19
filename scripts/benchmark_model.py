"""Training throughput, MFU and peak memory of videoswinv2 beside torchvision's swin3d of the same size.

    python scripts/benchmark_model.py --device cuda --compile \\
        --models videoswinv2_tiny videoswinv2_small videoswinv2_base --shape 8 3 32 224 224
    python scripts/benchmark_model.py --device cpu --models videoswinv2_tiny --shape 1 3 4 64 64 \\
        --attn-impls explicit sdpa --rounds 2 --steps 1 --warmup 1

--docs FOLDER (docs/benchmarks) also writes the tables and a plot of clips/s for the documentation.

One step: forward, cross-entropy against random labels, backward, AdamW step, zero_grad; under bf16
autocast on CUDA (on CPU fp32, or bf16 autocast with --bf16). Variants per size: our model for each
--attn-impls kernel (on CUDA "sdpa" forced onto one --sdpa-backend, so a fallback is an error, not a
slow figure) and torchvision's peer, each also compiled with --compile. Each round builds every
variant afresh (same seed, same batch), warms it up (compiled ones compile there) and times --steps
steps; the rounds interleave the variants, in reverse order every other round, so drifts in machine
state hit all alike. A variant that fails (OOM, no kernel, graph break) is reported, the rest go on.

Reported: clips/s (median and range over rounds), step time, peak CUDA memory of the timed steps,
forward GMACs per clip (the Video Swin paper's "FLOPs") and MFU: training FLOPs per step, counted
by FlopCounterMode (2 per multiply-add) over forward + backward of the eager model without
recomputation (our attention: the explicit kernel), over step time and peak bf16 FLOP/s.

Targets: videoswinv2_base at (8, 3, 32, 224, 224) on an H100 in bf16: >= 1.3x the clips/s of
swin3d_b, MFU >= 40%, peak memory <= swin3d_b's.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch._dynamo
import torch.nn.functional as F
from docs_output import DocsResults, bar_figure
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import video as tv_video

from videoswinv2 import create_model, list_models
from videoswinv2.models.attention import ATTN_IMPLS

TORCHVISION_PEERS = {
    "videoswinv2_tiny": "swin3d_t",
    "videoswinv2_small": "swin3d_s",
    "videoswinv2_base": "swin3d_b",
}
# Dense bf16 TFLOP/s by substrings of torch.cuda.get_device_name(); the first match wins.
PEAK_BF16_TFLOPS = (
    (("H100", "PCIe"), 756.0),
    (("H100",), 989.4),
    (("H200",), 989.4),
    (("A100",), 312.0),
    (("L40S",), 362.0),
    (("4090",), 165.2),
)
SDPA_BACKENDS = {
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "math": SDPBackend.MATH,
}
NUM_CLASSES = 400  # both families' default head
SEED = 0


@dataclass
class Cost:
    """What one model (eager, no recomputation) costs on the batch: parameters and FLOPs."""

    params_m: float
    fwd_gmacs_per_clip: float | None = None
    train_flops: float | None = None  # forward + backward, per step


@dataclass
class Variant:
    name: str
    build: Callable[[], nn.Module]
    cost: Cost
    compiled: bool = False
    sdpa_backend: SDPBackend | None = None
    fullgraph: bool = True
    peer: bool = False  # torchvision's; compiled, it falls back to fullgraph=False on a graph break
    step_s: list[float] = field(default_factory=list)  # per round
    peak_gib: list[float] = field(default_factory=list)
    failure: str | None = None
    note: str | None = None


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected 1/0/true/false, got {text!r}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["videoswinv2_tiny"], choices=list_models())
    parser.add_argument(
        "--shape", type=int, nargs=5, default=[8, 3, 32, 224, 224], metavar=("B", "C", "T", "H", "W")
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--attn-impls", nargs="+", default=["sdpa", "flex", "explicit"], choices=ATTN_IMPLS)
    parser.add_argument("--compile", action="store_true", help="also time each variant compiled")
    parser.add_argument(
        "--grad-checkpointing",
        nargs="+",
        type=parse_bool,
        metavar="0|1",
        help="our model's activation checkpointing: one flag, or one per stage (e.g. 1 1 0 0)",
    )
    parser.add_argument("--sdpa-backend", default="efficient", choices=SDPA_BACKENDS, help="forced on CUDA")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant and round")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="peak TFLOP/s for MFU (default: by GPU name)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU too (always on CUDA)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument(
        "--docs", metavar="FOLDER", help="also write the tables and a plot there (docs/benchmarks)"
    )
    return parser.parse_args()


def peak_tflops(args: argparse.Namespace, device: torch.device) -> float | None:
    if args.peak_tflops or device.type != "cuda":
        return args.peak_tflops
    name = torch.cuda.get_device_name(device)
    return next((tf for keys, tf in PEAK_BF16_TFLOPS if all(k in name for k in keys)), None)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"


def uses_bf16(device: torch.device, bf16: bool) -> bool:
    return device.type == "cuda" or bf16


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, bf16))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def one_line(err: BaseException) -> str:
    first = next((line for line in str(err).splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first.strip()[:160]}"


def make_batch(shape: Sequence[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The same clips and labels on every call."""
    gen = torch.Generator(device).manual_seed(SEED)
    clips = torch.randn(*shape, generator=gen, device=device)
    return clips, torch.randint(NUM_CLASSES, (shape[0],), generator=gen, device=device)


def count_cost(
    build: Callable[[], nn.Module], shape: Sequence[int], device: torch.device, bf16: bool
) -> Cost:
    torch.manual_seed(SEED)
    model = build().to(device)
    cost = Cost(sum(p.numel() for p in model.parameters()) / 1e6)
    clips, labels = make_batch(shape, device)
    try:
        with FlopCounterMode(display=False) as counter:
            with autocast(device, bf16):
                loss = F.cross_entropy(model(clips).float(), labels)
            fwd = counter.get_total_flops()
            loss.backward()
        cost.fwd_gmacs_per_clip = fwd / 2 / shape[0] / 1e9
        cost.train_flops = counter.get_total_flops()
    except Exception as err:  # a count that fails (e.g. OOM) costs the MFU column only
        print(f"  FLOP count failed, MFU n/a: {one_line(err)}")
    return cost


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    clips: torch.Tensor,
    labels: torch.Tensor,
    precision: Callable[[], contextlib.AbstractContextManager],
) -> None:
    with precision():
        loss = F.cross_entropy(model(clips).float(), labels)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def time_round(variant: Variant, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """Build, warm up and time one variant: seconds per step and peak GiB (nan on CPU) of the
    timed steps, above what was allocated before it was built."""
    cuda = device.type == "cuda"
    baseline = torch.cuda.memory_allocated(device) if cuda else 0
    torch.manual_seed(SEED)
    model = variant.build().to(device)
    if variant.compiled:
        model.compile(fullgraph=variant.fullgraph)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    clips, labels = make_batch(args.shape, device)
    precision = functools.partial(autocast, device, args.bf16)
    kernels = sdpa_kernel([variant.sdpa_backend]) if variant.sdpa_backend else contextlib.nullcontext()
    with kernels:
        for _ in range(args.warmup):
            train_step(model, optimizer, clips, labels, precision)
        sync(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            train_step(model, optimizer, clips, labels, precision)
        sync(device)
        step_s = (time.perf_counter() - start) / args.steps
    peak = (torch.cuda.max_memory_allocated(device) - baseline) / 2**30 if cuda else float("nan")
    return step_s, peak


def try_round(variant: Variant, args: argparse.Namespace, device: torch.device) -> tuple[str, bool] | None:
    """One round of one variant; on failure the reason and whether it was a graph break. Memory is
    freed after the exception (and the frames its traceback holds) is gone."""
    failure = None
    try:
        step_s, peak = time_round(variant, args, device)
        variant.step_s.append(step_s)
        variant.peak_gib.append(peak)
    except Exception as err:  # OOM, no SDPA kernel, dynamo errors: report, go on with the others
        failure = one_line(err), isinstance(err, torch._dynamo.exc.Unsupported)
        # The table keeps one line; the head of the full message goes to stderr for diagnosis.
        detail = "\n    ".join(str(err).strip().splitlines()[:15])
        print(f"  {variant.name} failed: {type(err).__name__}: {detail}", file=sys.stderr)
    free_memory(device)
    return failure


def measure(variant: Variant, args: argparse.Namespace, device: torch.device) -> None:
    """One round; a failed variant sits out the later rounds."""
    failure = try_round(variant, args, device)
    if failure and failure[1] and variant.peer and variant.fullgraph:
        variant.fullgraph = False
        variant.note = f"graph break under fullgraph=True ({failure[0]}); compiled with fullgraph=False"
        failure = try_round(variant, args, device)
    if failure:
        variant.failure = failure[0]


def make_variants(name: str, args: argparse.Namespace, device: torch.device) -> list[Variant]:
    ckpt = args.grad_checkpointing or [False]
    ckpt_arg = ckpt[0] if len(ckpt) == 1 else ckpt
    print(f"{name}: counting FLOPs")
    ours = count_cost(lambda: create_model(name, attn_impl="explicit"), args.shape, device, args.bf16)
    variants = []
    for compiled in (False, True) if args.compile else (False,):
        for impl in args.attn_impls:
            forced = device.type == "cuda" and impl in ("sdpa", "auto")
            variants.append(
                Variant(
                    f"{name} {impl}" + (" compiled" if compiled else ""),
                    lambda impl=impl: create_model(name, attn_impl=impl, grad_checkpointing=ckpt_arg),
                    ours,
                    compiled=compiled,
                    sdpa_backend=SDPA_BACKENDS[args.sdpa_backend] if forced else None,
                )
            )
    peer = TORCHVISION_PEERS.get(name)
    if peer:
        build = getattr(tv_video, peer)
        theirs = count_cost(build, args.shape, device, args.bf16)
        for compiled in (False, True) if args.compile else (False,):
            variants.append(
                Variant(peer + (" compiled" if compiled else ""), build, theirs, compiled, peer=True)
            )
    free_memory(device)
    return variants


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def clips_per_s(variant: Variant, batch: int) -> list[float]:
    return [batch / s for s in variant.step_s]


def print_table(variants: list[Variant], batch: int, peak: float | None) -> None:
    header = (
        f"{'variant':<36}{'params (M)':>11}{'fwd GMACs/clip':>16}{'clips/s median (min-max)':>28}"
        f"{'step ms':>10}{'peak GiB':>10}{'MFU %':>8}"
    )
    print(header)
    print("-" * len(header))
    for v in variants:
        row = f"{v.name:<36}{v.cost.params_m:>11.1f}{fmt(v.cost.fwd_gmacs_per_clip):>16}"
        if not v.step_s:
            print(f"{row}  failed: {v.failure}")
            continue
        rates = clips_per_s(v, batch)
        rate = f"{statistics.median(rates):.2f} ({min(rates):.2f}-{max(rates):.2f})"
        step_s = statistics.median(v.step_s)
        mfu = v.cost.train_flops / step_s / (peak * 1e12) * 100 if v.cost.train_flops and peak else None
        print(f"{row}{rate:>28}{step_s * 1e3:>10.1f}{fmt(max(v.peak_gib), '.2f'):>10}{fmt(mfu):>8}")
        if v.failure:
            print(f"  {v.name} failed in a later round: {v.failure}")
    for v in variants:
        if v.note:
            print(f"  {v.name}: {v.note}")


def print_ratios(variants: list[Variant], batch: int) -> None:
    """Each of our variants against torchvision's eager peer: median clips/s, per round, peak memory."""
    peer = next((v for v in variants if v.peer and not v.compiled), None)
    if peer is None or not peer.step_s:
        print("no ratios: " + (f"{peer.name} failed" if peer else "no torchvision peer"))
        return
    theirs = clips_per_s(peer, batch)
    for v in variants:
        if v.peer or not v.step_s:
            continue
        ours = clips_per_s(v, batch)
        per_round = [a / b for a, b in zip(ours, theirs)]
        memory = max(v.peak_gib) / max(peer.peak_gib)
        print(
            f"{v.name}: {statistics.median(ours) / statistics.median(theirs):.2f}x {peer.name} clips/s "
            f"({min(per_round):.2f}-{max(per_round):.2f}x per round)"
            + ("" if math.isnan(memory) else f", {memory:.2f}x its peak memory")
        )


def run_size(name: str, args: argparse.Namespace, device: torch.device, peak: float | None) -> list[Variant]:
    torch.compiler.reset()  # compiled code and recompile counts of the previous size
    variants = make_variants(name, args, device)
    for round_ in range(args.rounds):
        print(f"{name}: round {round_ + 1}/{args.rounds}")
        for variant in variants[:: -1 if round_ % 2 else 1]:
            if variant.failure is None:
                measure(variant, args, device)
    print()
    print_table(variants, args.shape[0], peak)
    print_ratios(variants, args.shape[0])
    print()
    return variants


def docs_results(
    sizes: dict[str, list[Variant]], args: argparse.Namespace, device: torch.device, peak: float | None
) -> DocsResults:
    """The documentation's table per size (with each variant against torchvision's eager peer)
    and a plot of clips/s."""
    batch = args.shape[0]
    docs = DocsResults("model")
    dtype = "bf16 autocast" if uses_bf16(device, args.bf16) else "fp32"
    docs.text(
        f"{device_name(device)}, clips of shape {tuple(args.shape)}, {dtype}, {args.rounds} rounds of "
        f"{args.warmup} warm-up + {args.steps} timed training steps, peak TFLOP/s for MFU {fmt(peak)}"
        + (f"; SDPA forced onto the {args.sdpa_backend} kernel" if device.type == "cuda" else "")
        + ":"
    )
    labels, medians, lows, highs = [], [], [], []
    for variants in sizes.values():
        peer = next((v for v in variants if v.peer and not v.compiled and v.step_s), None)
        rows = []
        for v in variants:
            if not v.step_s:
                rows.append(
                    [
                        v.name,
                        f"{v.cost.params_m:.1f}",
                        fmt(v.cost.fwd_gmacs_per_clip),
                        f"failed: {v.failure}",
                        "",
                        "",
                        "",
                        "",
                        "",
                    ]
                )
                continue
            rates = clips_per_s(v, batch)
            step_s = statistics.median(v.step_s)
            mfu = v.cost.train_flops / step_s / (peak * 1e12) * 100 if v.cost.train_flops and peak else None
            versus = ["", ""]
            if peer is not None and v is not peer:
                memory = max(v.peak_gib) / max(peer.peak_gib)
                versus = [
                    f"{statistics.median(rates) / statistics.median(clips_per_s(peer, batch)):.2f}x",
                    "" if math.isnan(memory) else f"{memory:.2f}x",
                ]
            rows.append(
                [
                    v.name,
                    f"{v.cost.params_m:.1f}",
                    fmt(v.cost.fwd_gmacs_per_clip),
                    f"{statistics.median(rates):.2f} ({min(rates):.2f}-{max(rates):.2f})",
                    f"{step_s * 1e3:.1f}",
                    fmt(max(v.peak_gib), ".2f"),
                    fmt(mfu),
                    *versus,
                ]
            )
            labels.append(v.name)
            medians.append(statistics.median(rates))
            lows.append(min(rates))
            highs.append(max(rates))
        peer_name = peer.name if peer else "peer"
        docs.table(
            [
                "variant",
                "params (M)",
                "fwd GMACs/clip",
                "clips/s median (min-max)",
                "step ms",
                "peak GiB",
                "MFU %",
                f"clips/s vs {peer_name}",
                f"peak memory vs {peer_name}",
            ],
            rows,
        )
    if labels:
        docs.figure(
            bar_figure(
                labels,
                medians,
                low=lows,
                high=highs,
                ylabel="training clips/s (median, min-max)",
                title=f"{device_name(device)}, {tuple(args.shape)}, {dtype}",
            ),
            "training clips/s of each variant",
        )
    return docs


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.compile:
        # Fresh models each round and several kernels per size recompile; never fall back to eager.
        torch._dynamo.config.recompile_limit = 64
        torch._dynamo.config.fail_on_recompile_limit_hit = True
    peak = peak_tflops(args, device)
    dtype = "bf16 autocast" if uses_bf16(device, args.bf16) else "fp32"
    print(
        f"{device_name(device)}, torch {torch.__version__}, shape {tuple(args.shape)}, {dtype}, "
        f"peak TFLOP/s {fmt(peak)}; {args.rounds} rounds of {args.warmup} warm-up + {args.steps} timed steps"
    )
    if device.type == "cuda":
        print(f"sdpa forced onto the {args.sdpa_backend} backend")
        if peak is None:
            print("MFU n/a: GPU not in the table, pass --peak-tflops")
    if args.grad_checkpointing:
        flags = [int(f) for f in args.grad_checkpointing]
        print(
            f"videoswinv2 activation checkpointing {'per stage' if len(flags) > 1 else 'all stages'}: {flags}"
        )
    sizes = {name: run_size(name, args, device, peak) for name in args.models}
    if args.docs:
        docs_results(sizes, args, device, peak).write(args.docs)


if __name__ == "__main__":
    main()
