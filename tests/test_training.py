"""Training logic checked directly: parameter groups, schedule, mixing, multi-view averaging."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from videoswinv2 import create_model
from videoswinv2.data.view_stream import Item, WindowSpan
from videoswinv2.errors import UsageError
from videoswinv2.training.evaluation import Result, RowSchema, ViewGatherer, row_top
from videoswinv2.training.mixing import mix_clips, smooth_one_hot
from videoswinv2.training.optim import param_groups, warmup_cosine


@pytest.fixture(scope="module")
def small_model():
    return create_model(
        "videoswinv2_tiny",
        num_classes=5,
        embed_dim=16,
        depths=(1, 2),
        num_heads=(2, 4),
        pretrained_window_sizes=(0, 0),
        window_size=(2, 2, 2),
    )


def test_param_groups_split_decay_and_backbone_multiplier(small_model):
    groups = {
        g["name"]: g for g in param_groups(small_model, lr=1e-3, weight_decay=0.05, backbone_lr_mult=0.1)
    }
    assert set(groups) == {"backbone_decay", "backbone_no_decay", "head_decay", "head_no_decay"}
    names = {id(p): n for n, p in small_model.named_parameters()}
    by_group = {k: {names[id(p)] for p in g["params"]} for k, g in groups.items()}
    assert by_group["head_decay"] == {"head.fc.weight"}
    assert by_group["head_no_decay"] == {"head.fc.bias"}
    decayed = by_group["backbone_decay"]
    assert "layers.0.blocks.0.attn.qkv.weight" in decayed
    assert "patch_embed.proj.weight" in decayed
    assert "layers.1.downsample.reduction.weight" in decayed
    no_decay = by_group["backbone_no_decay"]
    for name in (
        "logit_scale",
        "cpb_mlp.0.weight",
        "cpb_mlp.2.weight",
        "q_bias",
        "v_bias",
        "norm1.weight",
        "attn.proj.bias",
        "patch_embed.norm.weight",
    ):
        assert any(name in n for n in no_decay), name
        assert not any(name in n for n in decayed), name
    assert groups["backbone_decay"]["lr"] == pytest.approx(1e-4)
    assert groups["head_decay"]["lr"] == pytest.approx(1e-3)
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0
    assert groups["head_decay"]["weight_decay"] == 0.05
    # every trainable parameter is in exactly one group
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in small_model.parameters())


def test_warmup_cosine_schedule():
    f = lambda s: warmup_cosine(s, total_steps=100, warmup_steps=10, min_ratio=0.01)  # noqa: E731
    assert f(0) == pytest.approx(0.1)
    assert f(4) == pytest.approx(0.5)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(100) == pytest.approx(0.01)
    assert f(500) == pytest.approx(0.01)
    values = [f(s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_label_smoothing_matches_cross_entropy():
    logits, labels = torch.randn(6, 5), torch.randint(5, (6,))
    soft = smooth_one_hot(labels, 5, 0.1)
    torch.testing.assert_close(
        F.cross_entropy(logits, soft), F.cross_entropy(logits, labels, label_smoothing=0.1)
    )
    torch.testing.assert_close(soft.sum(-1), torch.ones(6))


def test_no_mixing_passes_clips_through():
    clips, labels = torch.randn(4, 3, 2, 8, 8), torch.tensor([0, 1, 2, 3])
    mixed, targets = mix_clips(clips, labels, num_classes=4)
    assert mixed is clips
    torch.testing.assert_close(targets, F.one_hot(labels, 4).float())


def test_mixup_mixes_clips_and_targets_with_the_same_weight():
    torch.manual_seed(0)
    clips = torch.stack([torch.full((3, 2, 8, 8), float(i)) for i in range(4)])
    labels = torch.tensor([0, 1, 2, 3])
    mixed, targets = mix_clips(clips, labels, num_classes=4, mixup_alpha=0.8)
    lam = float(mixed[0, 0, 0, 0, 0]) / -3 + 1  # clip 0 mixed with clip 3: 0*lam + 3*(1-lam)
    assert 0 <= lam <= 1
    torch.testing.assert_close(targets[0], torch.tensor([lam, 0, 0, 1 - lam]))
    torch.testing.assert_close(targets.sum(-1), torch.ones(4))


def test_cutmix_pastes_one_box_in_every_frame_and_weights_by_its_area():
    torch.manual_seed(3)
    clips = torch.zeros(2, 3, 4, 16, 16)
    clips[1] = 1.0
    for _ in range(5):
        mixed, targets = mix_clips(clips, torch.tensor([0, 1]), num_classes=2, cutmix_alpha=1.0)
        pasted = mixed[0, 0]  # (T, H, W): ones where clip 1 was pasted into clip 0
        assert (pasted == pasted[0]).all(), "the box must be the same in every frame"
        area = float(pasted[0].mean())
        torch.testing.assert_close(targets[0], torch.tensor([1 - area, area]))


def test_views_arriving_over_batches_make_one_result_per_item():
    a, b = Item("a.mp4", 3, label=1, index=0), Item("b.mp4", 2, label=0, index=1)
    probs = torch.tensor([[0.1, 0.9], [0.3, 0.7], [0.6, 0.4], [0.5, 0.5], [0.2, 0.8]])
    gatherer = ViewGatherer()
    # b's views come interleaved with a's, and a's last view in a later batch, out of order
    first = gatherer.add([a, b, a, b], [0, 0, 2, 1], {"probs": probs[:4], "features": torch.eye(4)})
    assert [r.item for r in first] == [b]
    torch.testing.assert_close(first[0].probs, probs[[1, 3]].mean(0))
    torch.testing.assert_close(first[0].features, torch.eye(4)[[1, 3]])  # per view, in view order
    (done,) = gatherer.add([a], [1], {"probs": probs[4:], "features": torch.ones(1, 4)})
    torch.testing.assert_close(done.probs, probs[[0, 4, 2]].mean(0))
    assert done.top(5) == [(1, pytest.approx(0.7)), (0, pytest.approx(0.3))]  # k capped at the classes
    # A video that fails after some of its views came: its result is the failure, nothing pending.
    batch = {"item": [a], "view": torch.tensor([0]), "failed": [(a, "decoding failed")]}
    (failed,) = gatherer.batch_results(batch, {"probs": probs[:1], "features": torch.ones(1, 4)})
    assert (failed.status, failed.reason, failed.probs) == ("failed", "decoding failed", None)
    assert gatherer.add([a], [1], {"probs": probs[:1], "features": torch.ones(1, 4)}) == []


def test_one_row_schema_for_tests_predictions_and_timelines():
    classes = ["a", "b", "c"]
    result = Result(
        Item("v.mp4", 3, label=2, window=WindowSpan(4, 1.5, 3.25)), probs=torch.tensor([0.6, 0.3, 0.1])
    )
    labelled = RowSchema(2, labelled=True)
    assert labelled.columns() == [
        "video",
        "status",
        "reason",
        "label",
        "correct",
        "top1_label",
        "top1_prob",
        "top2_label",
        "top2_prob",
    ]
    assert labelled.row(result, classes) == {
        "video": "v.mp4", "status": "ok", "reason": "", "label": "c", "correct": 0,
        "top1_label": "a", "top1_prob": "0.600000", "top2_label": "b", "top2_prob": "0.300000",
    }  # fmt: skip
    windows = RowSchema(1, windows=True)
    assert windows.row(result, classes)["start_s"] == "1.500"
    as_json = windows.row(result, classes, jsonl=True)
    assert (as_json["window"], as_json["end_s"], as_json["labels"], as_json["probs"]) == (
        4,
        3.25,
        ["a"],
        [0.6],
    )
    assert row_top(as_json) == row_top(windows.row(result, classes)) == [("a", 0.6)]
    failed = labelled.row(Result(Item("w.mp4", 3, label=1), "failed", "no video stream"), classes)
    assert failed == {
        "video": "w.mp4",
        "status": "failed",
        "reason": "no video stream",
        "label": "b",
        "correct": "",
    }


def test_compile_option_compiles_the_backbone_in_place_when_a_run_starts():
    from videoswinv2.training import VideoClassifier

    def compiled_parts(module: VideoClassifier) -> list:
        backbone = module.backbone
        return [part._compiled_call_impl for part in (backbone.patch_embed, *backbone.layers)]

    kwargs = dict(embed_dim=16, depths=(1, 1), num_heads=(2, 4), window_size=(2, 2, 2))
    module = VideoClassifier(num_classes=3, model_kwargs=kwargs, compile=True)
    keys = list(module.state_dict())
    assert compiled_parts(module) == [None] * 3  # building never compiles
    module.configure_model()
    compiled = compiled_parts(module)
    assert None not in compiled  # every stage: forward_features (predict_step) runs compiled too
    module.configure_model()  # a second trainer call (fit, then test) keeps the compiled model
    assert compiled_parts(module) == compiled
    assert list(module.state_dict()) == keys  # checkpoints keep their keys
    plain = VideoClassifier(num_classes=3, model_kwargs=kwargs)
    plain.configure_model()
    assert compiled_parts(plain) == [None] * 3


def test_mean_class_accuracy_counts_only_the_classes_present():
    from videoswinv2.training.evaluation import mean_class_accuracy

    # Rows are true classes: class 0 has 3 videos (2 right), class 1 has 1 (right), class 2 has
    # none but one video was predicted as it: it must not count as a class with accuracy 0.
    confusion = torch.tensor([[2, 0, 1], [0, 1, 0], [0, 0, 0]])
    assert float(mean_class_accuracy(confusion)) == pytest.approx((2 / 3 + 1) / 2)


def test_logged_top1_is_the_fraction_of_correct_videos_on_an_imbalanced_split(data_synthetic_root, tmp_path):
    """10 test videos of classes 0/1/2 (6/2/2), none of class 3, and a model that says class 0 to
    everything: top-1 is 6/10, the mean over the three present classes (1 + 0 + 0) / 3."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from videoswinv2.data import KineticsDataModule, read_annotations, read_class_names
    from videoswinv2.training import TestReport, VideoClassifier

    classes = read_class_names(data_synthetic_root / "classes.txt")
    videos = [
        v
        for split in ("train", "val")
        for v in read_annotations(
            data_synthetic_root / f"annotations/{split}.csv", data_synthetic_root, classes
        ).videos
    ]
    chosen = [
        v
        for label, count in ((0, 6), (1, 2), (2, 2))
        for v in [v for v in videos if v.label == label][:count]
    ]
    listing = tmp_path / "imbalanced.txt"
    listing.write_text("".join(f"{v.path} {v.label}\n" for v in chosen))
    data = KineticsDataModule(
        data_root=str(data_synthetic_root),
        test_annotations=str(listing),
        class_names_file="classes.txt",
        num_frames=4,
        frame_interval=2,
        test_short_side=32,
        test_crop_size=32,
        num_test_clips=1,
        num_workers=0,
    )
    module = VideoClassifier(
        num_classes=4, model_kwargs=dict(embed_dim=16, depths=(1,), num_heads=(2,), window_size=(2, 4, 4))
    )
    with torch.no_grad():
        module.backbone.head.fc.weight.zero_()
        module.backbone.head.fc.bias.copy_(torch.tensor([5.0, 0.0, 0.0, 0.0]))
    module.pretrained_weights.loaded = True  # a deliberately fixed classifier, not a random one
    trainer = L.Trainer(
        accelerator="cpu",
        logger=CSVLogger(tmp_path),
        callbacks=[TestReport()],  # one of the CLI's default callbacks
        use_distributed_sampler=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (metrics,) = trainer.test(module, datamodule=data)
    rows = list(csv.DictReader(open(Path(trainer.log_dir) / "predictions.csv")))
    assert len(rows) == 10
    assert metrics["test/top1"] == pytest.approx(sum(r["correct"] == "1" for r in rows) / len(rows))
    assert metrics["test/top1"] == pytest.approx(0.6)
    assert metrics["test/mean_class_accuracy"] == pytest.approx(1 / 3)


def test_dropouts_are_arguments_and_model_kwargs_of_older_configs_still_win():
    from videoswinv2.training import VideoClassifier

    kwargs = dict(embed_dim=16, depths=(2,), num_heads=(2,), window_size=(2, 2, 2))

    def dropouts(module: VideoClassifier) -> tuple[float, float]:
        return module.backbone.head_drop.p, module.backbone.layers[-1].blocks[-1].drop_path1.p

    assert dropouts(VideoClassifier(num_classes=3, model_kwargs=kwargs)) == pytest.approx((0.5, 0.1))
    given = VideoClassifier(num_classes=3, model_kwargs=kwargs, drop_rate=0.2, drop_path_rate=0.3)
    assert dropouts(given) == pytest.approx((0.2, 0.3))
    older = {**kwargs, "drop_rate": 0.0, "drop_path_rate": 0.4}  # older configs and checkpoints
    assert dropouts(VideoClassifier(num_classes=3, model_kwargs=older, drop_rate=0.2)) == pytest.approx(
        (0.0, 0.4)
    )


def test_the_clip_geometry_follows_the_data_module_and_is_checked_when_a_run_starts(data_synthetic_root):
    import lightning as L

    from videoswinv2.data import KineticsDataModule
    from videoswinv2.training import ClipGeometry, MaskedVideoPretraining, VideoClassifier

    data = KineticsDataModule(
        str(data_synthetic_root), val_annotations=None, num_frames=8, train_crop_size=48
    )
    assert ClipGeometry.of(data) == ClipGeometry(8, 48, None, 224)
    assert ClipGeometry.of(L.LightningDataModule()) is None
    kwargs = dict(embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=(2, 4, 4))
    geometry = ClipGeometry(num_frames=1, train_crop_size=64, val_crop_size=64)
    classifier = VideoClassifier(num_classes=3, model_kwargs=kwargs, clip_geometry=geometry)
    assert "clip_geometry" not in classifier.hparams  # the data's, not the model's: never saved
    with pytest.warns(UserWarning, match="T = 1 is smaller than patch_size 2"):
        classifier.setup("validate")
    MaskedVideoPretraining(model_kwargs=kwargs, clip_geometry=ClipGeometry(4, 32)).setup("validate")
    pretraining = MaskedVideoPretraining(model_kwargs=kwargs, clip_geometry=ClipGeometry(4, 32, 36))
    with pytest.raises(ValueError, match="a 4x36x36 clip .* does not divide into mask units of 2x8x8"):
        pretraining.setup("validate")  # the validation clips too, before the first step
    tiny_clips = MaskedVideoPretraining(model_kwargs=kwargs, clip_geometry=ClipGeometry(2, 8))
    with pytest.raises(
        UsageError, match="a cube mask needs at least 2 units to choose from, the clip has 1x1x1"
    ):
        tiny_clips.setup("validate")  # when the run starts, not at the first step
