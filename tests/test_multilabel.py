"""Multi-label models: average precision, view reductions, the loss and targets, the record, and
a tiny model that learns which objects a video shows."""

from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import check, run_cli_in_process

from videoswinv2.data.offline.objects import OBJECT_KINDS, ObjectSpec, make_object_dataset
from videoswinv2.data.view_stream import Item
from videoswinv2.record import EvalViews, ModelRecord
from videoswinv2.training import VideoClassifier
from videoswinv2.training.evaluation import (
    AveragePrecisions,
    Result,
    RowSchema,
    ViewGatherer,
    average_precisions,
    mean_average_precision,
)
from videoswinv2.training.mixing import mix_clips

TINY = dict(
    embed_dim=16, depths=(1, 1), num_heads=(2, 2), window_size=(2, 2, 2), pretrained_window_sizes=(0, 0)
)


def brute_force_ap(scores: list[float], positive: list[bool]) -> float:
    """Mean over the positives of the precision among the videos scored at least as high."""
    ranked = sorted(zip(scores, positive), key=lambda sp: -sp[0])
    hits, precisions = 0, []
    for rank, (_, is_positive) in enumerate(ranked, 1):
        if is_positive:
            hits += 1
            precisions.append(hits / rank)
    return sum(precisions) / len(precisions)


def test_mean_average_precision_equals_a_brute_force_computation() -> None:
    probs = torch.tensor(
        [
            [0.9, 0.10, 0.30, 0.2],
            [0.8, 0.70, 0.20, 0.1],
            [0.3, 0.60, 0.90, 0.4],
            [0.6, 0.20, 0.80, 0.3],
            [0.1, 0.95, 0.15, 0.6],
            [0.4, 0.40, 0.70, 0.7],
        ]
    )
    targets = torch.tensor(
        [[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0]],
        dtype=torch.float,
    )
    ap = average_precisions(probs, targets)
    expected = [brute_force_ap(probs[:, k].tolist(), targets[:, k].bool().tolist()) for k in range(3)]
    torch.testing.assert_close(ap[:3], torch.tensor(expected))
    assert expected[0] == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3)  # ranks 1, 3, 5
    assert math.isnan(ap[3])  # no positive video: left out of the mean
    assert float(mean_average_precision(ap)) == pytest.approx(sum(expected) / 3)
    # The metric over batches (as validation updates it) gives the same.
    metric = AveragePrecisions()
    metric.update(probs[:4], targets[:4])
    metric.update(probs[4:], targets[4:])
    torch.testing.assert_close(metric.compute(), ap, equal_nan=True)


@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_view_reduction_by_its_definition(reduction) -> None:
    item = Item("v.mp4", 3, label=frozenset({0, 2}), reduction=reduction)
    probs = torch.tensor([[0.9, 0.1, 0.2], [0.3, 0.5, 0.2], [0.6, 0.2, 0.95]])
    (result,) = ViewGatherer().add([item] * 3, [2, 0, 1], {"probs": probs})
    expected = [max(probs[:, k]) if reduction == "max" else sum(probs[:, k]) / 3 for k in range(3)]
    torch.testing.assert_close(result.probs, torch.tensor(expected))
    with pytest.raises(ValueError, match="reduction"):
        EvalViews(reduction="median")


def test_mixing_multi_hot_targets_keeps_each_clips_classes() -> None:
    torch.manual_seed(0)
    clips = torch.stack([torch.full((3, 2, 8, 8), float(i)) for i in range(2)])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    mixed, targets = mix_clips(clips, labels, num_classes=3, mixup_alpha=1.0)
    lam = float(mixed[0].mean())  # clip 0 is 0s, clip 1 is 1s: the weight of clip 1 in clip 0
    torch.testing.assert_close(targets[0], labels[0] * (1 - lam) + labels[1] * lam)
    assert targets[0, 2] == pytest.approx(1.0)  # a class both clips hold stays certain
    _, smoothed = mix_clips(clips, labels, num_classes=3, label_smoothing=0.3)
    torch.testing.assert_close(smoothed[0], torch.tensor([0.8, 0.1, 0.8]))


def test_a_multi_label_classifier_trains_each_class_with_its_own_sigmoid() -> None:
    module = VideoClassifier(num_classes=3, multi_label=True, model_kwargs=TINY, drop_rate=0.0)
    assert module.monitored_metric == "val/mAP" and module.train_metrics is None
    logits, targets = torch.randn(4, 3), torch.tensor([[1.0, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(
        module._loss(logits, targets), F.binary_cross_entropy_with_logits(logits, targets)
    )
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        probs = module.evaluator.outputs(clips)["probs"]
        torch.testing.assert_close(probs, module(clips).sigmoid())
    assert not torch.allclose(probs.sum(-1), torch.ones(2))  # not one softmax
    single = VideoClassifier(num_classes=3, model_kwargs=TINY)
    assert single.monitored_metric == "val/top1" and not single.hparams.multi_label


def test_the_best_checkpoint_keeps_model_checkpoints_state_key() -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from videoswinv2.training import BestCheckpoint

    assert BestCheckpoint().monitor is None  # until setup asks the module (see the object run)
    # A checkpoint of a run from before BestCheckpoint restores into it.
    assert (
        BestCheckpoint(monitor="val/top1").state_key
        == ModelCheckpoint(monitor="val/top1", mode="max").state_key
    )


def test_the_record_says_multi_label_and_its_absence_means_single_label() -> None:
    record = ModelRecord(model="videoswinv2_tiny", num_classes=3, multi_label=True)
    strings = record.to_strings()
    assert strings["multi_label"] == "true"
    assert ModelRecord.from_strings(strings).multi_label
    assert "multi_label" not in ModelRecord(model="videoswinv2_tiny").to_strings()  # as before
    assert not ModelRecord.from_strings({"model": "videoswinv2_tiny"}).multi_label
    module = VideoClassifier(num_classes=3, multi_label=True, model_kwargs=TINY)
    checkpoint = {"hyper_parameters": dict(module.hparams), "videoswinv2": {}}
    assert ModelRecord.from_lightning(checkpoint).multi_label
    assert not ModelRecord.from_lightning({"hyper_parameters": {"model": "videoswinv2_tiny"}}).multi_label


def test_multi_label_rows_give_the_true_and_the_predicted_classes() -> None:
    classes = ["drink", "sit", "watch"]
    result = Result(Item("v.mp4", 3, label=frozenset({0, 1})), probs=torch.tensor([0.7, 0.55, 0.2]))
    schema = RowSchema(1, labelled=True, threshold=0.5)
    assert schema.columns() == [
        *("video", "status", "reason", "label", "correct", "predicted", "predicted_probs"),
        *("top1_label", "top1_prob"),
    ]
    row = schema.row(result, classes)
    assert (row["label"], row["correct"], row["predicted"]) == ("drink;sit", 1, "drink;sit")
    assert row["predicted_probs"] == "0.700000;0.550000" and row["top1_label"] == "drink"
    as_json = RowSchema(1, threshold=0.6).row(result, classes, jsonl=True)
    assert (as_json["predicted"], as_json["predicted_probs"]) == (["drink"], [0.7])
    wrong = RowSchema(1, labelled=True, threshold=0.6).row(result, classes)
    assert wrong["correct"] == 0  # exactly the true classes, or not correct


@pytest.fixture(scope="module")
def object_run(tmp_path_factory) -> dict:
    """A tiny model fitted, in this process, on videos that each show 1 to 3 of 4 object kinds;
    the data is multi-label by its format alone (``multilabel_csv``, detected)."""
    root = tmp_path_factory.mktemp("objects")
    data = make_object_dataset(
        root / "data", ObjectSpec(train_videos=96, val_videos=24, test_videos=32, size=32)
    )
    args = [
        "-c",
        "configs/smoke.yaml",
        f"--data.init_args.data_root={data}",
        "--data.init_args.synthetic=null",
        "--data.init_args.class_names_file=classes.txt",
        "--data.init_args.num_frames=4",
        "--data.init_args.train_crop_size=32",
        "--data.init_args.train_scale=[0.6,1.0]",
        "--data.init_args.val_short_side=32",
        "--data.init_args.val_crop_size=32",
        "--data.init_args.test_short_side=32",
        "--data.init_args.test_crop_size=32",
        "--data.init_args.num_test_clips=1",
        "--data.init_args.num_workers=0",
        "--model.init_args.label_smoothing=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.save_dir={root / 'runs'}",
    ]
    fit = check(run_cli_in_process("fit", *args, "--trainer.max_epochs=24"))
    return {
        "root": root,
        "data": data,
        "args": args,
        "run": root / "runs" / "smoke" / "version_0",
        "fit": fit,
    }


def test_a_model_learns_which_objects_a_video_shows(object_run) -> None:
    run = object_run["run"]
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["multi_label"] is True  # from the data's format, set by nobody
    assert "best checkpoint (val/mAP = " in object_run["fit"].stdout  # the module's score picks it
    best = next((run / "checkpoints").glob("epoch=*.ckpt"))
    assert ModelRecord.from_lightning(torch.load(best, weights_only=True)).multi_label
    check(run_cli_in_process("test", *object_run["args"], f"--ckpt_path={best}"))
    tested = run / f"test_{best.stem}"
    [metrics] = [
        {k: float(v) for k, v in row.items() if v} for row in csv.DictReader((tested / "metrics.csv").open())
    ]
    assert metrics["test/mAP"] >= 0.9
    per_class = list(csv.DictReader((tested / "per_class_ap.csv").open()))
    assert [row["class"] for row in per_class] == list(OBJECT_KINDS)
    assert sum(float(row["ap"]) for row in per_class) / 4 == pytest.approx(metrics["test/mAP"], abs=1e-5)
    # predict names exactly the kinds a video shows for most held-out videos.
    truth = {
        str(object_run["data"] / row["video"]): set(row["labels"].split(";"))
        for row in csv.DictReader((object_run["data"] / "annotations" / "test.csv").open())
    }
    out = object_run["root"] / "predicted.csv"
    check(
        run_cli_in_process(
            "predict",
            *truth,
            "--ckpt",
            str(best),
            "--threshold",
            "0.5",
            "--output",
            str(out),
            "--no-progress",
            "--num-workers",
            "0",
        )
    )
    rows = list(csv.DictReader(out.open()))
    exact = sum(set(row["predicted"].split(";")) - {""} == truth[row["video"]] for row in rows)
    assert len(rows) == 32 and exact >= 0.8 * len(rows), f"{exact} of {len(rows)} exactly right"
