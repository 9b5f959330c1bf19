"""The documentation site: it builds with ``mkdocs build --strict`` (no broken link or anchor, no
page outside the navigation, every docstring renders), its reference pages follow the code
(``docs/hooks.py``), and every benchmark script's ``--docs`` writes a table and a plot the
benchmark pages include."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import run_cli_in_process

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load(REPO / "docs" / "hooks.py", "docs_hooks")


# -- the site ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_site_builds_strictly_and_offline(tmp_path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(REPO)}
    # Offline: any fetch (web fonts, object inventories, CDN scripts) would go to a dead proxy.
    dead = "http://127.0.0.1:9"
    env.update(HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead, NO_PROXY="", no_proxy="")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "WARNING" not in log, log[-4000:]
    # every public module has its API page, every command its CLI page
    package = hooks.Package(REPO)
    for module in package.modules:
        page = site / hooks.api_page(module, package).replace(".md", "").removesuffix("/index")
        assert (page / "index.html").is_file(), module
    main_help = run_cli_in_process("--help").stdout
    commands = re.findall(r"^  (\S+)\s{2,}", main_help.split("commands:\n", 1)[1], flags=re.M)
    assert {"fit", "test", "predict", "inflate"} <= set(commands)
    for command in commands:
        html = (site / "reference" / "cli" / command / "index.html").read_text()
        assert f"usage: videoswinv2 {command}" in html or "usage: videoswinv2 [options]" in html, command
    assert "--trainer.max_epochs" in (site / "reference" / "cli" / "fit" / "index.html").read_text()
    options = (site / "reference" / "cli" / "model-and-data" / "index.html").read_text()
    assert "--data.data_root" in options and "--model.model_kwargs" in options
    # a short reference resolved to the API entry of the object, wherever its module is
    assert 'href="../api/videoswinv2/' in (site / "reference" / "long-runs" / "index.html").read_text()
    # the benchmark results and the README's citations are included
    assert "14.21 (13.68-15.05)" in (site / "benchmarks" / "resume" / "index.html").read_text() or (
        "Measured on" in (REPO / "docs" / "benchmarks" / "resume.results.md").read_text()
    )
    assert "liu2022videoswin" in (site / "index.html").read_text()
    assert not list(site.rglob("*.py")), "the hooks and scripts stay out of the site"


# -- the hooks -----------------------------------------------------------------------------------


def test_the_api_pages_and_navigation_follow_the_package_files(tmp_path) -> None:
    """A module that moves, appears or goes moves its page: nothing lists modules by hand."""
    root = tmp_path
    for path, text in {
        "videoswinv2/__init__.py": '"""Top."""\nfrom .data import Reader\n__all__ = ["Reader"]\n',
        "videoswinv2/record.py": '"""What a model is."""\nVARIANTS = {}\n',
        "videoswinv2/_private.py": "",
        "videoswinv2/__main__.py": "",
        "videoswinv2/data/__init__.py": '"""Data."""\nfrom .readers import Reader\n__all__ = ["Reader"]\n',
        "videoswinv2/data/readers.py": '"""Readers."""\nclass Reader:\n    """Reads. More."""\n',
        "videoswinv2/data/_helpers.py": "",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    package = hooks.Package(root)
    assert package.modules == [
        "videoswinv2",
        "videoswinv2.data",
        "videoswinv2.data.readers",
        "videoswinv2.record",
    ]
    assert package.resolve("videoswinv2", "Reader") == "videoswinv2.data.readers.Reader"
    assert hooks.api_nav(package) == [
        {"videoswinv2": "reference/api/videoswinv2/index.md"},
        {
            "data": [
                "reference/api/videoswinv2/data/index.md",
                {"readers": "reference/api/videoswinv2/data/readers.md"},
            ]
        },
        {"record": "reference/api/videoswinv2/record.md"},
    ]
    page = hooks.api_markdown("videoswinv2.data", package)
    assert "::: videoswinv2.data" in page and "members: false" in page
    assert (
        "| [`Reader`][videoswinv2.data.readers.Reader] | [`videoswinv2.data.readers`](readers.md) | Reads. |"
        in page
    )
    assert hooks.api_markdown("videoswinv2.data.readers", package).endswith("::: videoswinv2.data.readers\n")


def test_a_short_reference_links_the_object_wherever_it_is_defined() -> None:
    hooks._state["package"] = package = hooks.Package(REPO)
    page = SimpleNamespace(file=SimpleNamespace(src_uri="reference/long-runs.md"))
    text = hooks.short_references(
        "the [`ResumableSampler`][] and [its state][ResumableSampler.state_dict]", page
    )
    target = re.search(r"\[`ResumableSampler`\]\[([\w.]+)\]", text).group(1)
    assert target.endswith(".ResumableSampler") and target in package.paths
    assert f"[its state][{target}.state_dict]" in text
    module = hooks.short_references("[planning][clip_planning]", page)
    assert re.fullmatch(r"\[planning\]\(api/videoswinv2/[\w/]+/clip_planning\.md\)", module), module
    untouched = "[x][videoswinv2.data.KineticsDataModule] [NoSuchName][] [`a`](b.md)\n```python\nd[k][VARIANTS]\n```\n"
    assert hooks.short_references(untouched, page) == untouched
    with pytest.raises(hooks.PluginError, match="could be any of"):
        hooks.short_references("[run][]", page)


# -- the benchmark scripts' --docs ----------------------------------------------------------------


def _included_results() -> set[str]:
    pages = (REPO / "docs" / "benchmarks").glob("*.md")
    return {
        name for page in pages for name in re.findall(r'^--8<-- "benchmarks/([^"]+)"', page.read_text(), re.M)
    }


def _script(name: str, monkeypatch, folder: Path) -> dict:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.setattr(sys, "argv", [str(SCRIPTS / name), "--docs", str(folder)])
    return runpy.run_path(str(SCRIPTS / name), run_name="benchmark_under_test")


def _check_written(folder: Path, name: str) -> str:
    text = (folder / f"{name}.results.md").read_text()
    assert text.startswith("<!-- Written by scripts/docs_output.py")
    assert f"Measured on {datetime.date.today().isoformat()} on " in text
    assert re.search(r"^\|.*\|\n\|(---\|)+$", text, flags=re.M), "a Markdown table"
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (folder / image).read_bytes()[:4] == b"\x89PNG", image
    assert re.search(r"!\[[^\]]+\]\(" + re.escape(name) + r"(-\d+)?\.png\)", text), "a plot"
    assert f"{name}.results.md" in _included_results(), "a benchmark page includes it"
    return text


def test_benchmark_resume_writes_its_table_and_plot(tmp_path, monkeypatch) -> None:
    script = _script("benchmark_resume.py", monkeypatch, tmp_path)
    results = {
        "before": {"epochs": [14.2, 13.7, 15.1], "checkpoints": [0.0, 0.0, 0.0]},
        "resumable": {"epochs": [15.0, 13.5, 15.7], "checkpoints": [0.13, 0.14, 0.14]},
    }
    args = argparse.Namespace(train_per_class=64, repeats=3, epochs=2, skip_first=1, docs=tmp_path)
    script["report"](results, args)
    text = _check_written(tmp_path, "resume")
    assert "| resumable | 15.00 (13.50-15.70) | 0.140 | 1.056x |" in text
    assert "`python scripts/benchmark_resume.py --docs " in text


def test_benchmark_inflate_writes_its_table_and_plot(tmp_path, monkeypatch) -> None:
    script = _script("benchmark_inflate.py", monkeypatch, tmp_path)
    results = [
        {"format": f, "size_mb": 335.0, "params_m": 87.3, "counts": (300, 25, 75, 2),
         "seconds": {"read": r, "inflate": 0.02, "load": 0.03, "total": r + 0.05}}
        for f, r in (("pth", 0.12), ("safetensors", 0.01))
    ]  # fmt: skip
    script["report"](results, argparse.Namespace(model="videoswinv2_base", repeats=3, docs=tmp_path))
    assert "| .safetensors, 335 MiB | 0.010 | 0.020 | 0.030 | 0.060 |" in _check_written(tmp_path, "inflate")


def test_benchmark_data_writes_its_tables_and_plot(tmp_path, monkeypatch) -> None:
    script = _script("benchmark_data.py", monkeypatch, tmp_path)
    cost = {"pyav": 100.0, "decord": 120.0, "torchcodec": 80.0}
    results = [
        {"videos": videos, "what": what, "decoder": decoder, "k": k, "ms": cost[decoder] / k,
         "low": cost[decoder] / k - 5, "high": cost[decoder] / k + 5}
        for videos in ("raw 640x360", "prepared 640x360")
        for what in ("bare", "train", "train 256")
        for k in (1, 4)
        for decoder in ("pyav", "decord", "torchcodec")
    ] + [
        {"videos": "raw 640x360", "what": "views", "decoder": d, "k": 4, "ms": 900.0, "low": 880.0, "high": 950.0}
        for d in ("pyav", "torchcodec")
    ]  # fmt: skip
    scaling = [
        {"videos": "raw 640x360", "k": 1, "workers": w, "clips_per_s": 4.8 * w, "per_worker": 4.8,
         "cpu_over_wall": 0.97, "torch_threads": 1, "os_threads": 3}
        for w in (1, 2)
    ]  # fmt: skip
    args = argparse.Namespace(dataset="kinetics", videos=2, rounds=3, docs=tmp_path)
    script["docs_results"](args, results, scaling).write(tmp_path)
    text = _check_written(tmp_path, "data")
    assert "| raw 640x360 | train | 1 | 100 (95-105) | 120 (115-125) | 80 (75-85) | 1.25x | 8.0 |" in text
    assert "| raw 640x360 | views | 4 | 900 (880-950) |  | 900 (880-950) | 1.00x |  |" in text
    args.dataset = "ssv2"
    script["docs_results"](args, results, []).write(tmp_path)
    _check_written(tmp_path, "data-ssv2")


def test_benchmark_model_writes_its_tables_and_plot(tmp_path, monkeypatch) -> None:
    script = _script("benchmark_model.py", monkeypatch, tmp_path)
    cost = script["Cost"](27.9, 88.0, 5.0e12)
    variants = [
        script["Variant"]("videoswinv2_tiny sdpa", lambda: None, cost, step_s=[0.5, 0.4], peak_gib=[10.0, 10.0]),
        script["Variant"]("videoswinv2_tiny flex", lambda: None, cost, failure="RuntimeError: no kernel"),
        script["Variant"]("swin3d_t", lambda: None, script["Cost"](28.2, 87.0, 5.2e12), step_s=[0.6, 0.6],
                          peak_gib=[12.0, 12.0], peer=True),
    ]  # fmt: skip
    args = argparse.Namespace(shape=[8, 3, 32, 224, 224], bf16=True, rounds=2, warmup=3, steps=10,
                              sdpa_backend="efficient", docs=tmp_path)  # fmt: skip
    script["docs_results"]({"videoswinv2_tiny": variants}, args, torch.device("cpu"), 100.0).write(tmp_path)
    text = _check_written(tmp_path, "model")
    assert (
        "| videoswinv2_tiny sdpa | 27.9 | 88.0 | 18.00 (16.00-20.00) | 450.0 | 10.00 | 11.1 | 1.35x | 0.83x |"
        in text
    )
    assert "failed: RuntimeError: no kernel" in text


def test_benchmark_predict_writes_its_table_and_plot(tmp_path, monkeypatch) -> None:
    script = _script("benchmark_predict.py", monkeypatch, tmp_path)
    args = argparse.Namespace(videos=4, variants=["old", "engine-32", "engine-bf16"], json=None, docs=tmp_path,
                              num_workers=2, batch_size=None, repeats=2, ckpt=None, num_frames=32, size=224)  # fmt: skip
    views = script["EvalViews"](num_clips=4, num_frames=32, short_side=224, crop_size=224)
    times = {"old": [130.0, 120.0], "engine-32": [76.0, 75.0], "engine-bf16": [47.0, 49.0]}
    outputs = {name: {"a.mp4": [0.2, 0.8], "b.mp4": [0.6, 0.4]} for name in ("engine-32", "engine-bf16")}
    script["report"](args, views, times, outputs, 2)
    text = _check_written(tmp_path, "predict")
    assert "| engine-bf16 | 47.0, 49.0 | 0.083 (0.082-0.085) | 2.60x |" in text
    assert "same top-1 on 2/2 videos" in text


def test_benchmark_pretrain_writes_its_tables_and_plots(tmp_path, monkeypatch) -> None:
    script = _script("benchmark_pretrain.py", monkeypatch, tmp_path)
    starts = ["scratch", "cube_0.6", "tube_0.6"]
    done = {
        (str(budget), str(steps), start, str(seed)): {"top1": str(0.3 + 0.1 * k + 0.01 * seed + steps / 1000)}
        for budget in (4, 8)
        for steps in (50, 100)
        for k, start in enumerate(starts)
        for seed in (0, 1, 2)
    }
    args = argparse.Namespace(seeds=[0, 1, 2], budgets=[4, 8], finetune_steps=[50, 100], pretrain_epochs=30,
                              train_per_class=64, ratios=[0.6], docs=tmp_path)  # fmt: skip
    tables = [script["print_table"](done, starts, steps, args) for steps in args.finetune_steps]
    script["accuracy_docs"](tables, starts, args).write(tmp_path)
    assert "| 4 | 0.360 +- 0.010 (0.35, 0.36, 0.37) | " in _check_written(tmp_path, "pretrain")
    args.ratios = [0.6, 0.75]
    script["accuracy_docs"](tables, starts, args).write(tmp_path)
    _check_written(tmp_path, "pretrain-ratios")
    times = {"supervised": [0.37, 0.36, 0.38], "pretraining": [0.43, 0.41, 0.44]}
    script["step_cost_report"]("smoke on (8, 3, 16, 64, 64), cpu, fp32; 3 rounds", times, args)
    assert "pretraining / supervised: 1.158x" in _check_written(tmp_path, "pretrain-step-cost")


def test_benchmark_timeline_writes_its_tables_and_plots(tmp_path, monkeypatch) -> None:
    script = _script("benchmark_timeline.py", monkeypatch, tmp_path)
    runs = {
        variant: [
            {"windows": 232, "seconds": 232 / rate, "rss": 1.1e9, "worker_rss": 6.6e8} for rate in rates
        ]
        for variant, rates in (
            ("timeline", (24.0, 25.0)),
            ("seek-1crop", (15.0, 14.0)),
            ("seek-3crops", (9.0, 8.5)),
        )
    }
    long_run = {"windows": 1161, "seconds": 43.0, "rss": 1.11e9, "worker_rss": 9e8}
    args = argparse.Namespace(minutes=2.0, memory_minutes=10.0, model="smoke", workers=2, precision="32", gop=60,
                              repeats=2, docs=tmp_path)  # fmt: skip
    script["timeline_report"](args, runs, long_run)
    assert "| timeline | 232 | 24.5 (24-25) | 2.80x | 1.69x | 1049 / 629 |" in _check_written(
        tmp_path, "timeline"
    )
    args = argparse.Namespace(latency_frames=32, latency_crop=224, latency_rounds=2, docs=tmp_path)
    times = {"onnxruntime fp32": [3200.0, 3300.0], "PyTorch eager fp32": [2800.0, 2780.0],
             "PyTorch eager bf16": [14000.0, 14500.0]}  # fmt: skip
    diffs = {"onnxruntime fp32": 1e-6, "PyTorch eager fp32": 0.0, "PyTorch eager bf16": 1.8e-2}
    script["latency_report"](args, times, diffs, "exported videoswinv2_tiny to ONNX in 111 s")
    assert "| onnxruntime fp32 | 3.25e+03 (3.2e+03-3.3e+03) | 0.86x | 1.0e-06 |" in _check_written(
        tmp_path, "export-latency"
    )


def test_the_benchmarks_page_says_where_each_result_comes_from(tmp_path, monkeypatch) -> None:
    docs = tmp_path / "docs"
    (docs / "benchmarks").mkdir(parents=True)
    (docs / "benchmarks" / "resume.md").write_text(
        '# Exact resume\n\n--8<-- "benchmarks/resume.results.md"\n'
    )
    (docs / "benchmarks" / "old.results.md").write_text("<!-- Carried over from the README -->\nfigures\n")
    script = _script("benchmark_resume.py", monkeypatch, docs / "benchmarks")
    results = {v: {"epochs": [1.0, 2.0], "checkpoints": [0.0, 0.1]} for v in ("before", "resumable")}
    script["report"](results, argparse.Namespace(train_per_class=4, repeats=1, epochs=2, skip_first=0,
                                                 docs=docs / "benchmarks"))  # fmt: skip
    table = hooks.benchmark_results(docs)
    today = datetime.date.today().isoformat()
    assert re.search(
        rf"\| `resume.results.md` \| \[Exact resume\]\(resume.md\) \| written by the script on {today} ",
        table,
    )
    assert (
        "| `old.results.md` | included by no page | carried over from the README, not yet regenerated |"
        in table
    )
