"""What a new user sees: one-line errors naming the setting, help, warnings for misleading
results, readable plots, and run folders that stay where the README says."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from matplotlib.backends.backend_agg import FigureCanvasAgg

from videoswinv2 import create_model
from videoswinv2.cli import main
from videoswinv2.data import KineticsDataModule
from videoswinv2.record import kinetics400_classes
from videoswinv2.training import VideoClassifier
from videoswinv2.training.optim import learning_rates, param_groups
from videoswinv2.training.reports import confusion_matrix_figure, per_class_accuracy_figure

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "smoke.yaml")


def last_error_line(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        (
            "--model.init_args.model",
            "nosuch",
            "error: --model.init_args.model: unknown model 'nosuch'; choose",
        ),
        ("--data.init_args.num_frames", "0", "error: --data.init_args.num_frames, "),
        (
            "--data.init_args.batch_size",
            "0",
            "error: --data.init_args.batch_size: batch_size must be >= 1, got 0",
        ),
        (
            "--data.init_args.num_workers",
            "-1",
            "error: --data.init_args.num_workers: num_workers must be >= 0",
        ),
        (
            "--data.init_args.decoder",
            "fancy",
            "error: --data.init_args.decoder: expected one of 'pyav', 'decord', 'torchcodec', got 'fancy'",
        ),
        ("--trainer.max_epochs", "x", "error: --trainer.max_epochs: expected an int, got 'x'"),
        (
            "--model.init_args.lrr",
            "1",
            "error: --model.init_args.lrr: unknown option (did you mean --model.init_args.lr?)",
        ),
        ("--trainer.max_epochz", "1", "(did you mean --trainer.max_epochs?)"),
        ("--modle.init_args.lr", "1", "(did you mean --model.init_args.lr?)"),
    ],
)
def test_a_bad_setting_ends_in_one_line_naming_it(capsys, option, value, expected):
    assert expected in last_error_line(capsys, "fit", "-c", SMOKE, option, value)


@pytest.mark.parametrize(
    "case",
    ["unknown label", "no data_root", "one class", "pretrained of another size"],
)
def test_bad_input_found_when_a_run_starts_ends_in_one_line(case, data_synthetic_root, tmp_path, capsys):
    args = ["--data.init_args.data_root", str(data_synthetic_root), "--data.init_args.synthetic", "null"]
    args += ["--data.init_args.num_workers", "0", "--trainer.logger", "false", "--trainer.max_epochs", "1"]
    if case == "unknown label":
        csv = (data_synthetic_root / "annotations" / "train.csv").read_text().splitlines()
        label = csv[1].split(",")[0]
        (tmp_path / "train.csv").write_text("\n".join([csv[0], csv[1].replace(label, "no such class", 1)]))
        args += ["--data.init_args.train_annotations", str(tmp_path / "train.csv")]
        args += ["--data.init_args.class_names_file", "classes.txt"]
        expected = f"error: {tmp_path / 'train.csv'}:2: unknown label 'no such class'"
    elif case == "no data_root":
        args = ["--data.init_args.data_root", "null", "--trainer.logger", "false"]
        expected = "error: data_root is not set: pass --data.init_args.data_root DIR"
    elif case == "one class":  # not a head of one output, and not an option the user never set
        (tmp_path / "one.txt").write_text("1 ApplyEyeMakeup\n")
        args += ["--data.init_args.class_names_file", str(tmp_path / "one.txt")]
        expected = f"error: {tmp_path / 'one.txt'}: 1 class ['ApplyEyeMakeup']: a classifier needs at least 2"
    else:  # a 3D state dict of the tiny model, whose widths are not the smoke model's
        torch.save(create_model("videoswinv2_tiny", num_classes=4).state_dict(), tmp_path / "tiny.pth")
        args += ["--model.init_args.pretrained", str(tmp_path / "tiny.pth")]
        expected = f"error: the pretrained checkpoint {tmp_path / 'tiny.pth'}: "
    line = last_error_line(capsys, "fit", "-c", SMOKE, *args)
    assert line.startswith(expected), line
    if case == "pretrained of another size":
        assert "embed_dim=96" in line and "embed_dim=32" in line and "videoswinv2_tiny" in line


def test_an_unreadable_ckpt_path_is_one_line(tmp_path, capsys):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    line = last_error_line(capsys, "test", "-c", SMOKE, "--ckpt_path", str(text))
    assert line.startswith(f"error: --ckpt_path {text} is not a checkpoint torch can read")
    line = last_error_line(capsys, "test", "-c", SMOKE, "--ckpt_path", str(tmp_path / "absent.ckpt"))
    assert line == f"error: --ckpt_path {tmp_path / 'absent.ckpt'}: no such file"


def test_help_lists_every_command_and_a_typo_gets_the_nearest(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "inflate", "make-synthetic", "predict"):
        assert f"\n  {command} " in out
    assert main(["make-synthtic"]) == 2
    assert "unknown command 'make-synthtic'; did you mean 'make-synthetic'?" in capsys.readouterr().err


def test_make_synthetic_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["make-synthetic", "--help"])
    assert "(default: 24)" in capsys.readouterr().out


def test_a_failed_start_leaves_no_version_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "smoke" / "version_0").mkdir(parents=True)  # an earlier run stays
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "classes.txt").write_text("a\nb\n")  # classes, but no annotations
    line = last_error_line(
        capsys,
        "fit",
        "-c",
        SMOKE,
        "--data.init_args.data_root",
        str(tmp_path / "empty"),
        "--data.init_args.synthetic",
        "null",
        "--data.init_args.class_names_file",
        "classes.txt",
        "--trainer.logger.init_args.save_dir",
        str(runs),
        "--trainer.default_root_dir",
        str(runs),
    )
    assert line.startswith("error: annotation file ") and line.endswith("does not exist")
    assert sorted(p.name for p in (runs / "smoke").iterdir()) == ["version_0"]


# -- warnings where results would mislead ---------------------------------------------------------


def tiny_classifier(window_size: tuple[int, int, int] = (2, 2, 2)) -> VideoClassifier:
    kwargs = dict(embed_dim=16, depths=[1, 1], num_heads=[1, 2], pretrained_window_sizes=[0, 0])
    return VideoClassifier(num_classes=4, model_kwargs={**kwargs, "window_size": list(window_size)})


def data_module(root: Path, **overrides) -> KineticsDataModule:
    settings = dict(
        data_root=str(root),
        class_names_file="classes.txt",
        num_frames=4,
        frame_interval=1,
        train_crop_size=32,
        val_short_side=32,
        val_crop_size=32,
        test_short_side=32,
        test_crop_size=32,
        num_test_clips=1,
        batch_size=4,
        test_batch_size=4,
        num_workers=0,
    )
    return KineticsDataModule(**{**settings, **overrides})


def trainer(tmp_path: Path, **kwargs) -> pl.Trainer:
    settings = dict(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        default_root_dir=tmp_path,
    )
    return pl.Trainer(**{**settings, **kwargs})


def test_testing_an_untrained_model_warns(data_synthetic_root, tmp_path):
    with pytest.warns(UserWarning, match="neither trained nor loaded from a checkpoint"):
        trainer(tmp_path).test(tiny_classifier(), datamodule=data_module(data_synthetic_root))


def test_an_all_broken_validation_is_nan_with_a_warning_and_never_the_best(
    data_synthetic_root, data_broken_videos, tmp_path
):
    listing = tmp_path / "broken_val.txt"
    listing.write_text("".join(f"{data_broken_videos[k]} 0\n" for k in ("truncated", "empty", "text")))
    data = data_module(data_synthetic_root, val_annotations=str(listing))
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/top1", mode="max")
    run = trainer(tmp_path, callbacks=[best], limit_train_batches=1, num_sanity_val_steps=0)
    with pytest.warns(UserWarning, match="no validation video could be decoded"):
        # Another window than the test above: the model's mask cache must not see its inference tensors.
        run.fit(tiny_classifier(window_size=(2, 4, 4)), datamodule=data)
    assert math.isnan(run.callback_metrics["val/top1"])
    assert best.best_model_score == float("-inf")  # ranked below any real score


def test_an_empty_annotation_file_names_the_split_and_the_file(data_synthetic_root, tmp_path):
    empty = tmp_path / "val.csv"
    empty.write_text("label,youtube_id,time_start,time_end,split\n")
    with pytest.raises(ValueError, match=rf"the val split has no videos: val_annotations {empty}"):
        data_module(data_synthetic_root, val_annotations=str(empty)).setup("validate")


def test_a_window_larger_than_every_feature_map_says_what_it_becomes():
    model = create_model("videoswinv2_tiny", depths=[1, 1], num_heads=[1, 2], embed_dim=16,
                         pretrained_window_sizes=[0, 0], window_size=844)  # fmt: skip
    (problem,) = model.input_size_problems((16, 64, 64))
    assert "window_size 844x844x844 exceeds every stage's feature map on T, H, W" in problem
    assert "the windows become 8x16x16, 8x8x8" in problem
    short = model.input_size_problems((1, 64, 64))
    assert any("T = 1 is smaller than patch_size 2" in p for p in short)
    assert create_model("videoswinv2_tiny").input_size_problems((32, 224, 224)) == []


def test_one_learning_rate_curve_per_distinct_rate():
    model = create_model("videoswinv2_tiny", depths=[1, 1], num_heads=[1, 2], embed_dim=16,
                         pretrained_window_sizes=[0, 0])  # fmt: skip
    assert learning_rates(param_groups(model, lr=1e-3, weight_decay=0.05)) == {"lr": 1e-3}
    groups = param_groups(model, lr=1e-3, weight_decay=0.05, backbone_lr_mult=0.1)
    assert learning_rates(groups) == pytest.approx({"lr/head": 1e-3, "lr/backbone": 1e-4})


# -- plots --------------------------------------------------------------------------------------


def drawn_texts(ax) -> list:
    """The title and the tick labels inside the view limits (matplotlib keeps others undrawn)."""
    texts = [ax.title]
    for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        low, high = sorted(limits)
        ticks = zip(axis.get_majorticklocs(), axis.get_majorticklabels())
        texts += [label for tick, label in ticks if low <= tick <= high]
    return texts


@pytest.mark.parametrize("num_classes", [4, 400])
def test_plots_keep_every_label_and_title_inside_the_image(num_classes):
    classes = kinetics400_classes()[:num_classes]
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(num_classes, (10 * num_classes,), generator=generator)
    predicted = torch.where(torch.rand(len(labels), generator=generator) < 0.6, labels, 0)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    for figure in (
        per_class_accuracy_figure(confusion, classes),
        confusion_matrix_figure(confusion, classes),
    ):
        canvas = FigureCanvasAgg(figure)
        canvas.draw()  # lays the figure out as savefig does
        renderer = canvas.get_renderer()
        page = figure.bbox
        texts = [text for ax in figure.axes for text in drawn_texts(ax)]
        for text in texts:
            if text.get_text() and text.get_visible():
                box = text.get_window_extent(renderer)
                assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, text.get_text()
                assert page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, text.get_text()
                assert text.get_fontsize() >= 7, text.get_text()
        assert figure.get_figwidth() * figure.dpi >= 400
        if figure.axes[0].get_title().startswith("Confusion"):
            assert len(figure.axes) == 2  # the colour bar
    per_class = per_class_accuracy_figure(confusion, classes)
    names = [t.get_text() for t in per_class.axes[0].get_yticklabels()]
    accuracy = confusion.diag().float() / confusion.sum(1).clamp(min=1)
    by_name = dict(zip(classes, accuracy.tolist()))
    assert by_name[names[0]] == accuracy.max() and by_name[names[-1]] == accuracy.min()
