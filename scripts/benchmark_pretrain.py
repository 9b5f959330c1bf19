"""Masked video pretraining (``MaskedVideoPretraining``) against training from scratch, with few labels.

Accuracy (the default): on the synthetic motion dataset (``videoswinv2.data.offline.synthetic``: 4
classes told apart by motion only), the smoke config's model is

1. pretrained on the unlabelled training videos (all of them, labels never read), once per mask
   kind (``--masks``), ratio (``--ratios``) and seed;
2. fine-tuned on ``--budgets`` labelled videos per class (a random subset of the training
   videos, drawn per seed), for the same number of optimiser steps (``--finetune-steps``) from
   every start: each pretraining checkpoint (through ``VideoClassifier(pretrained=...)``, the
   hand-off users make) and from scratch;
3. tested on the test split (every video, 2 clips x 3 crops).

It prints test top-1 per budget and start, mean and standard deviation over the seeds with the
per-seed values, side by side with scratch, and writes every run to ``--out``/results.csv
(runs already there are not redone, so an interrupted benchmark resumes).

Step cost (``--step-cost``): one optimiser step (forward, loss, backward, AdamW) of masked
pretraining and of supervised training, same model and same clips, alternating, ``--rounds``
rounds of ``--steps`` steps; median time per step of each and their ratio (with the range of
the per-round ratios). It needs a quiet machine.

    python scripts/benchmark_pretrain.py --out runs/benchmark_pretrain [--seeds 0 1 2] [--threads 1]
    python scripts/benchmark_pretrain.py --step-cost [--device cuda --model videoswinv2_base --shape 8 3 16 224 224 --bf16]

--docs FOLDER (docs/benchmarks) also writes the tables and a plot for the documentation.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import statistics
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from docs_output import DocsResults, bar_figure, grouped_bar_figure

from videoswinv2.data import (
    KineticsDataModule,
    SyntheticSpec,
    UnlabelledVideoDataModule,
    make_synthetic_dataset,
)
from videoswinv2.training import MaskedVideoPretraining, VideoClassifier

# configs/smoke.yaml's model.
SMOKE_MODEL = dict(
    embed_dim=32,
    depths=[2, 2],
    num_heads=[2, 4],
    window_size=[8, 4, 4],
    patch_size=[2, 4, 4],
    drop_path_rate=0.0,
)
RESULT_FIELDS = ("budget", "steps", "start", "seed", "top1", "pretrain_loss", "seconds")


# -- data --------------------------------------------------------------------------------------------


def dataset(args: argparse.Namespace) -> Path:
    root = Path(args.out) / "data"
    if not (root / "classes.txt").is_file():
        spec = SyntheticSpec(
            train_per_class=args.train_per_class,
            val_per_class=1,
            test_per_class=args.test_per_class,
            num_frames=32,
            size=args.size,
        )
        make_synthetic_dataset(root, spec)
    return root


def labelled_subset(root: Path, per_class: int, seed: int) -> str:
    """An annotation file of ``per_class`` random training videos per class (drawn by ``seed``)."""
    name = f"annotations/train_{per_class}_per_class_seed{seed}.csv"
    rows = list(csv.reader((root / "annotations" / "train.csv").open()))
    header, rows = rows[0], rows[1:]
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted({row[0] for row in rows}):
        of_class = [row for row in rows if row[0] == label]
        chosen += [of_class[i] for i in sorted(rng.choice(len(of_class), per_class, replace=False))]
    with (root / name).open("w", newline="") as file:
        csv.writer(file).writerows([header, *chosen])
    return name


def clip_settings(args: argparse.Namespace) -> dict:
    return dict(
        num_frames=args.frames,
        frame_interval=2,
        train_crop_size=args.size,
        train_scale=(0.5, 1.0),
        val_short_side=args.size,
        val_crop_size=args.size,
        test_short_side=args.size,
        test_crop_size=args.size,
        num_test_clips=2,
        batch_size=args.batch_size,
        test_batch_size=8,
        num_workers=args.workers,
    )


def trainer(args: argparse.Namespace, folder: Path, **kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator=args.device,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        default_root_dir=folder,
        **kwargs,
    )


# -- runs --------------------------------------------------------------------------------------------


def pretrain(args: argparse.Namespace, root: Path, kind: str, ratio: float, seed: int) -> tuple[Path, float]:
    """Pretrain on every training video (labels unused); the checkpoint and the last epoch's loss."""
    folder = Path(args.out) / "pretrain" / f"{kind}_{ratio}_seed{seed}"
    ckpt = folder / "last.ckpt"
    L.seed_everything(seed, verbose=False)
    data = UnlabelledVideoDataModule(data_root=str(root), videos="train", **clip_settings(args))
    module = MaskedVideoPretraining(
        model_kwargs=SMOKE_MODEL,
        mask_kind=kind,
        mask_ratio=ratio,
        lr=args.pretrain_lr,
        warmup_epochs=1,
    )
    fit = trainer(args, folder, max_epochs=args.pretrain_epochs)
    fit.fit(module, data)
    fit.save_checkpoint(ckpt)
    return ckpt, float(fit.callback_metrics["train/loss_epoch"])


def finetune_and_test(
    args: argparse.Namespace,
    root: Path,
    per_class: int,
    steps: int,
    seed: int,
    start: str,
    pretrained: Path | None,
) -> float:
    """Fine-tune on ``per_class`` labelled videos per class for ``steps`` steps; test top-1."""
    folder = Path(args.out) / "finetune" / f"{start}_{per_class}_{steps}steps_seed{seed}"
    L.seed_everything(seed, verbose=False)
    annotations = labelled_subset(root, per_class, seed)
    data = KineticsDataModule(
        data_root=str(root),
        train_annotations=annotations,
        val_annotations=None,
        test_annotations="annotations/test.csv",
        class_names_file="classes.txt",
        **clip_settings(args),
    )
    steps_per_epoch = math.ceil(4 * per_class / args.batch_size)
    epochs = math.ceil(steps / steps_per_epoch)
    module = VideoClassifier(
        num_classes=4,
        model_kwargs=SMOKE_MODEL,
        pretrained=None if pretrained is None else str(pretrained),
        lr=args.finetune_lr,
        warmup_epochs=0.1 * epochs,  # a tenth of the steps
        label_smoothing=0.1,
    )
    fit = trainer(args, folder, max_steps=steps, max_epochs=epochs)
    fit.fit(module, data)
    return float(fit.test(module, data, verbose=False)[0]["test/top1"])


def accuracy(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = dataset(args)
    results_file = out / "results.csv"
    done = {}
    if results_file.is_file():
        done = {
            (r["budget"], r["steps"], r["start"], r["seed"]): r for r in csv.DictReader(results_file.open())
        }
    else:
        results_file.write_text(",".join(RESULT_FIELDS) + "\n")

    def record(key: tuple, top1: float, loss: float, seconds: float) -> None:
        row = dict(zip(RESULT_FIELDS, (*key, f"{top1:.4f}", f"{loss:.4f}", f"{seconds:.0f}")))
        done[tuple(map(str, key))] = {k: str(v) for k, v in row.items()}
        with results_file.open("a") as file:
            file.write(",".join(str(row[k]) for k in RESULT_FIELDS) + "\n")
        budget, steps, start, seed = key
        print(f"{budget}/class, {steps} steps, {start}, seed {seed}: test top-1 {top1:.3f}", flush=True)

    starts = ["scratch"] + [f"{kind}_{ratio}" for kind in args.masks for ratio in args.ratios]
    runs = [(budget, steps) for budget in args.budgets for steps in args.finetune_steps]
    for seed in args.seeds:
        for start in starts:
            pending = [(b, n) for b, n in runs if (str(b), str(n), start, str(seed)) not in done]
            if not pending:
                continue
            ckpt, loss, began = None, math.nan, time.perf_counter()
            if start != "scratch":
                kind, ratio = start.split("_")
                ckpt, loss = pretrain(args, root, kind, float(ratio), seed)
                print(
                    f"pretrained {start}, seed {seed}: loss {loss:.4f} ({time.perf_counter() - began:.0f} s)"
                )
            for budget, steps in pending:
                began = time.perf_counter()
                top1 = finetune_and_test(args, root, budget, steps, seed, start, ckpt)
                record((budget, steps, start, seed), top1, loss, time.perf_counter() - began)
    tables = [print_table(done, starts, steps, args) for steps in args.finetune_steps]
    if args.docs:
        accuracy_docs(tables, starts, args).write(args.docs)


def accuracy_docs(tables: list[tuple], starts: list[str], args: argparse.Namespace) -> DocsResults:
    """The documentation's tables (one per number of fine-tuning steps) and a plot of the means."""
    docs = DocsResults("pretrain" if len(args.ratios) == 1 else "pretrain-ratios")
    groups, means, spreads = [], {start: [] for start in starts}, {start: [] for start in starts}
    for steps, (title, header, rows, stats) in zip(args.finetune_steps, tables):
        docs.text(title + ":")
        docs.table(header, rows)
        for budget in args.budgets:
            groups.append(f"{steps} steps, {budget}/class")
            for start in starts:
                mean, spread = stats.get((budget, start), (math.nan, 0.0))
                means[start].append(mean)
                spreads[start].append(spread)
    docs.figure(
        grouped_bar_figure(
            groups,
            means,
            errors=spreads,
            ylabel="test top-1 (mean, std over seeds)",
            title="fine-tuning from masked pretraining vs from scratch, few labels",
        ),
        "test top-1 after fine-tuning, per start",
    )
    return docs


def print_table(done: dict, starts: list[str], steps: int, args: argparse.Namespace) -> tuple:
    """Print one table; returns its title, header, rows and (budget, start) -> (mean, std)."""
    title = (
        f"test top-1 after {steps} fine-tuning steps, mean +- std over seeds "
        f"{args.seeds} (per seed); pretrained starts: {args.pretrain_epochs} epochs on "
        f"{4 * args.train_per_class} unlabelled videos"
    )
    print(f"\n{title}")
    header = ["labels/class"] + starts + [f"{s} - scratch" for s in starts[1:]]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    rows, stats = [], {}
    for budget in args.budgets:
        cells, means = [], {}
        for start in starts:
            values = [
                float(done[key]["top1"])
                for key in sorted(done)
                if key[:3] == (str(budget), str(steps), start) and int(key[3]) in args.seeds
            ]
            if not values:
                cells.append("-")
                continue
            means[start] = statistics.mean(values)
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            stats[(budget, start)] = (means[start], spread)
            per_seed = ", ".join(f"{v:.2f}" for v in values)
            cells.append(f"{means[start]:.3f} +- {spread:.3f} ({per_seed})")
        gains = [
            f"{100 * (means[s] - means['scratch']):+.1f} pt" if s in means and "scratch" in means else "-"
            for s in starts[1:]
        ]
        print(f"| {budget} | " + " | ".join(cells + gains) + " |")
        rows.append([budget, *cells, *gains])
    return title, header, rows, stats


# -- step cost ----------------------------------------------------------------------------------------


def step_cost(args: argparse.Namespace) -> None:
    device = torch.device(
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    kwargs = SMOKE_MODEL if args.model == "smoke" else {}
    name = "videoswinv2_tiny" if args.model == "smoke" else args.model
    torch.manual_seed(0)
    clips = torch.randn(*args.shape, device=device)
    labels = torch.randint(0, 4, (args.shape[0],), device=device)
    supervised = VideoClassifier(name, num_classes=4, model_kwargs=kwargs).to(device)
    masked = MaskedVideoPretraining(name, model_kwargs=kwargs).to(device)
    masked.backbone.load_state_dict(supervised.backbone.state_dict(), strict=False)

    def loss_of(variant: str) -> torch.Tensor:
        if variant == "supervised":
            return F.cross_entropy(supervised(clips).float(), labels)
        return masked.reconstruct(clips, masked.random_mask(clips)).loss

    optimizers = {
        "supervised": torch.optim.AdamW(supervised.parameters(), lr=1e-4),
        "pretraining": torch.optim.AdamW(masked.parameters(), lr=1e-4),
    }

    def run(variant: str, steps: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        for _ in range(steps):
            with torch.autocast(device.type, torch.bfloat16, enabled=args.bf16):
                loss = loss_of(variant)
            loss.backward()
            optimizers[variant].step()
            optimizers[variant].zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - began) / steps

    for variant in optimizers:
        run(variant, args.warmup)
    times: dict[str, list[float]] = {variant: [] for variant in optimizers}
    for round_ in range(args.rounds):
        order = list(optimizers) if round_ % 2 == 0 else list(reversed(optimizers))  # alternate
        for variant in order:
            times[variant].append(run(variant, args.steps))
    setting = (
        f"{name} {'(smoke config) ' if args.model == 'smoke' else ''}on {tuple(args.shape)}, {device.type}, "
        f"{'bf16 autocast' if args.bf16 else 'fp32'}, {torch.get_num_threads()} threads; "
        f"{args.rounds} alternating rounds of {args.steps} steps"
    )
    step_cost_report(setting, times, args)


def step_cost_report(setting: str, times: dict[str, list[float]], args: argparse.Namespace) -> None:
    """Print the step times and their ratio; with ``--docs``, also write them and a plot."""
    ratios = [p / s for p, s in zip(times["pretraining"], times["supervised"])]
    ratio = (
        f"pretraining / supervised: {statistics.median(ratios):.3f}x "
        f"(per round {min(ratios):.3f} .. {max(ratios):.3f})"
    )
    print(setting)
    for variant, values in times.items():
        print(
            f"  {variant:<12} {1000 * statistics.median(values):8.1f} ms per step "
            f"(rounds {', '.join(f'{1000 * v:.1f}' for v in values)})"
        )
    print(f"  {ratio}")
    if not args.docs:
        return
    docs = DocsResults("pretrain-step-cost")
    docs.text(setting + ":")
    docs.table(
        ["step", "ms per step, median", "rounds (ms)"],
        [
            [variant, f"{1000 * statistics.median(values):.1f}", ", ".join(f"{1000 * v:.1f}" for v in values)]
            for variant, values in times.items()
        ],
    )
    docs.text(ratio + ".")
    docs.figure(
        bar_figure(
            list(times),
            [1000 * statistics.median(v) for v in times.values()],
            low=[1000 * min(v) for v in times.values()],
            high=[1000 * max(v) for v in times.values()],
            ylabel="ms per optimiser step (median, min-max over rounds)",
            title=setting.split(";")[0],
        ),
        "a pretraining step against a supervised step",
    )
    docs.write(args.docs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="runs/benchmark_pretrain", help="data, checkpoints and results.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 8], help="labelled videos per class")
    parser.add_argument("--masks", nargs="+", default=["cube", "tube"], choices=["cube", "tube"])
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.6], help="mask ratios to pretrain with")
    parser.add_argument(
        "--train-per-class", type=int, default=64, help="unlabelled training videos per class"
    )
    parser.add_argument("--test-per-class", type=int, default=25)
    parser.add_argument("--size", type=int, default=32, help="frame size of the generated videos (px)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (interval 2)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--finetune-steps", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--workers", type=int, default=0, help="decoding processes")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's); 1 on a shared machine")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    step = parser.add_argument_group("step cost")
    step.add_argument("--step-cost", action="store_true", help="time the steps instead of measuring accuracy")
    step.add_argument("--model", default="smoke", help="smoke (configs/smoke.yaml's model) or a model name")
    step.add_argument(
        "--shape", type=int, nargs=5, default=[8, 3, 16, 64, 64], metavar=("B", "C", "T", "H", "W")
    )
    step.add_argument("--bf16", action="store_true", help="bf16 autocast")
    step.add_argument("--rounds", type=int, default=5)
    step.add_argument("--steps", type=int, default=5)
    step.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--docs", metavar="FOLDER", help="also write the tables and a plot there (docs/benchmarks)"
    )
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # one line per run is enough
    for message in (
        "exceeds every stage",
        "isinstance\\(treespec",
        "Total length of",
        "`weights_only` was not set",
    ):
        warnings.filterwarnings("ignore", message=f".*{message}")
    if args.threads:
        torch.set_num_threads(args.threads)
    step_cost(args) if args.step_cost else accuracy(args)


if __name__ == "__main__":
    main()
