"""Masked video pretraining: masks, loss, the unlabelled data module, pictures, and the hand-offs
of its checkpoint to fine-tuning and to feature extraction."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import check, run_cli_in_process
from torch.utils.data import DataLoader
from torchvision.io import decode_png, read_file

from videoswinv2.cli import main
from videoswinv2.data import (
    BrokenVideoLogger,
    SyntheticSpec,
    UnlabelledVideoDataModule,
    load_views,
    make_synthetic_dataset,
    unlabelled_videos,
)
from videoswinv2.data.unlabelled import NO_LABEL
from videoswinv2.inference.inputs import mirrored_path
from videoswinv2.record import EvalViews
from videoswinv2.training import MaskedVideoPretraining, ReconstructionPictures, VideoClassifier
from videoswinv2.training.masking import expand_mask, masked_l1, normalize_patches, random_unit_mask

# A 2-stage model: 2x4x4 patches, one 2x2 merge, so last-stage tokens (and mask units) cover 2x8x8 px.
TINY = dict(embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[2, 4, 4], drop_path_rate=0.0)
INFO = "videoswinv2.checkpoints.inflate"


def pretraining(**kwargs) -> MaskedVideoPretraining:
    return MaskedVideoPretraining(model_kwargs=dict(TINY), warmup_epochs=0, **kwargs)


def clips(n: int = 4) -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    items = [
        {"video": torch.randn(3, 4, 32, 32, generator=gen), "label": NO_LABEL, "index": i} for i in range(n)
    ]
    return DataLoader(items, batch_size=2)


def trainer(max_steps: int = 1, **kwargs) -> L.Trainer:
    options = dict(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    return L.Trainer(**{**options, **kwargs})


# -- masks and loss -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.4, 0.6, 0.9])
def test_masks_mask_exactly_the_ratio_of_every_clip_and_tubes_repeat_over_time(ratio):
    cube = random_unit_mask(16, (4, 6, 6), ratio, "cube")
    assert cube.shape == (16, 4, 6, 6) and cube.dtype == torch.bool
    assert cube.flatten(1).sum(1).tolist() == [round(ratio * 144)] * 16
    assert len({tuple(m.flatten().tolist()) for m in cube}) == 16  # a different mask per clip
    tube = random_unit_mask(16, (4, 6, 6), ratio, "tube")
    assert tube.flatten(2).sum(2).eq(round(ratio * 36)).all()
    assert (tube == tube[:, :1]).all()  # the same spatial units in every unit of time
    assert tube.flatten(1).float().mean(1).eq(round(ratio * 36) / 36).all()


def test_bad_mask_settings_are_clear_errors():
    with pytest.raises(ValueError, match="mask_ratio must be in"):
        pretraining(mask_ratio=1.0)
    with pytest.raises(ValueError, match="mask kind must be one of"):
        pretraining(mask_kind="random")
    with pytest.raises(
        ValueError, match=r"mask_unit \[2, 12, 16\] must be .* multiples of .* stride \[2, 8, 8\]"
    ):
        pretraining(mask_unit=(2, 12, 16))
    with pytest.raises(ValueError, match="does not divide into mask units of 2x8x8"):
        pretraining().random_mask(torch.zeros(1, 3, 4, 32, 36))


@pytest.mark.parametrize("mask_unit", [None, (4, 16, 8)])
def test_the_mask_token_replaces_exactly_the_embeddings_of_masked_units(mask_unit):
    module = pretraining(mask_unit=mask_unit).eval()
    unit = module.mask_unit
    x = torch.randn(2, 3, 8, 32, 32)
    unit_mask = module.random_mask(x)
    seen = {}
    module.backbone.patch_embed.register_forward_hook(lambda m, i, out: seen.update(embedded=out))
    module.backbone.layers[0].register_forward_pre_hook(lambda m, args: seen.update(stage_input=args[0]))
    with torch.no_grad():
        result = module.reconstruct(x, unit_mask)
    embedded, stage_input = seen["embedded"], seen["stage_input"]  # (B, T', H', W', D)
    masked = (stage_input == module.mask_token).all(-1)
    kept = (stage_input == embedded).all(-1)
    assert torch.equal(masked, ~kept)  # each token is one or the other
    # Masked tokens are exactly the units' boxes of tokens (unit / patch), nothing else.
    patch = module.backbone.patch_size
    assert torch.equal(masked, expand_mask(unit_mask, tuple(u // p for u, p in zip(unit, patch))))
    # In pixels: whole units, each a whole number of last-stage boxes (2x8x8 px).
    assert unit[0] % 2 == 0 and unit[1] % 8 == 0 and unit[2] % 8 == 0
    assert torch.equal(result.voxel_mask, expand_mask(unit_mask, unit))
    assert result.prediction.shape == x.shape


@pytest.mark.parametrize("mask_unit", [None, (2, 16, 16)])
def test_the_loss_ignores_the_target_in_visible_regions_and_only_there(mask_unit):
    module = pretraining(mask_unit=mask_unit)
    clips = torch.randn(2, 3, 4, 32, 32)
    voxel_mask = expand_mask(module.random_mask(clips), module.mask_unit)
    prediction = torch.randn_like(clips)

    def loss(target: torch.Tensor) -> torch.Tensor:
        return masked_l1(prediction, normalize_patches(target, module.stride), voxel_mask)

    visible = (~voxel_mask).unsqueeze(1).expand_as(clips)
    changed = clips.clone()
    changed[visible] = torch.randn(int(visible.sum())) * 5 + 3
    assert torch.equal(loss(changed), loss(clips))
    changed = clips.clone()
    changed[~visible] += torch.randn(int((~visible).sum()))
    assert not torch.allclose(loss(changed), loss(clips))
    # The module's loss is this one: the decoder's prediction against the normalised clips.
    unit_mask = module.random_mask(clips)
    module.decoder.forward = lambda features: prediction
    expected = masked_l1(
        prediction, normalize_patches(clips, module.stride), expand_mask(unit_mask, module.mask_unit)
    )
    assert torch.equal(module.reconstruct(clips, unit_mask).loss, expected)


# -- hand-offs ---------------------------------------------------------------------------------------


def test_the_backbone_keys_are_the_classifiers_without_its_head():
    pretrain_keys = [k for k in pretraining().state_dict() if k.startswith("backbone.")]
    classifier_keys = [k for k in VideoClassifier(num_classes=3, model_kwargs=TINY).state_dict()]
    classifier_backbone = [k for k in classifier_keys if k.startswith("backbone.")]
    assert pretrain_keys == [k for k in classifier_backbone if not k.startswith("backbone.head.")]
    assert set(classifier_backbone) - set(pretrain_keys) == {
        "backbone.head.fc.weight",
        "backbone.head.fc.bias",
    }
    others = {k for k in pretraining().state_dict() if not k.startswith("backbone.")}
    assert others == {"mask_token", "decoder.proj.weight", "decoder.proj.bias"}


class BackboneAtFirstStep(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.state = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}


@pytest.fixture(scope="module")
def pretrained_ckpt(tmp_path_factory) -> Path:
    """A pretraining Lightning checkpoint after 2 steps."""
    module = pretraining()
    fit = trainer(max_steps=2)
    fit.fit(module, clips())
    fit.save_checkpoint(path := tmp_path_factory.mktemp("pretrain") / "last.ckpt")
    return path


def test_fine_tuning_starts_from_every_backbone_tensor_with_a_new_logged_head(pretrained_ckpt, caplog):
    source = {
        k.removeprefix("backbone."): v
        for k, v in torch.load(pretrained_ckpt, weights_only=True)["state_dict"].items()
        if k.startswith("backbone.")
    }
    module = VideoClassifier(
        num_classes=3, model_kwargs=TINY, pretrained=str(pretrained_ckpt), warmup_epochs=0
    )
    fresh_head = module.backbone.head.fc.weight.detach().clone()
    seen = BackboneAtFirstStep()
    labelled = [{**item, "label": item["index"] % 3} for item in clips().dataset]
    with caplog.at_level(logging.INFO, logger=INFO):
        trainer(callbacks=[seen]).fit(module, DataLoader(labelled, batch_size=2))
    assert set(seen.state) - set(source) == {"head.fc.weight", "head.fc.bias"}
    for key, value in source.items():
        assert torch.equal(seen.state[key], value), key
    assert torch.equal(seen.state["head.fc.weight"], fresh_head)
    assert f"loaded {pretrained_ckpt} (videoswinv2 layout, 3D)" in caplog.text
    assert f"copied: {len(source)} tensors" in caplog.text
    assert "head.fc.weight: the checkpoint has no classifier" in caplog.text
    assert "mask_token: mask token of masked-image-modeling pretraining" in caplog.text
    assert "decoder.proj.weight: decoder of masked-image-modeling pretraining" in caplog.text


def test_extract_features_takes_the_encoder_and_predict_refuses_it(
    pretrained_ckpt, data_synthetic_root, tmp_path, capsys
):
    video = str(sorted((data_synthetic_root / "test").glob("*.mp4"))[0])
    views = [
        "--views",
        "1",
        "--num-frames",
        "4",
        "--short-side",
        "32",
        "--crop-size",
        "32",
        "--precision",
        "32",
    ]
    args = [video, "--ckpt", str(pretrained_ckpt), *views, "--num-workers", "0", "--no-progress"]
    assert main(["extract-features", *args, "--output", str(tmp_path)]) == 0
    saved = np.load(tmp_path / mirrored_path(video, ".npy"))
    module = MaskedVideoPretraining.load_from_checkpoint(pretrained_ckpt).eval()
    clips_ = load_views(EvalViews(num_clips=1, num_frames=4, short_side=32, crop_size=32), video)
    with torch.no_grad():
        expected = module.backbone.forward_head(module.backbone.forward_features(clips_), pre_logits=True)
    assert saved.shape == (32,)  # 16 channels x 2 stages
    np.testing.assert_allclose(saved, expected.mean(0).numpy(), atol=1e-5, rtol=0)
    capsys.readouterr()
    assert main(["predict", *args]) == 2
    assert "masked-pretraining checkpoint: it has no classifier" in capsys.readouterr().err


# -- unlabelled data ---------------------------------------------------------------------------------


def test_pretraining_on_a_nested_folder_of_mixed_containers_skips_and_reports_the_broken_file(
    data_make_numbered_video, tmp_path, caplog
):
    root = tmp_path / "footage"
    for name in ("a/b/one.mp4", "a/two.mkv", "c/three.webm", "d/e/f/four.avi", "five.mov"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        data_make_numbered_video(root / name, 12)
    (root / "c" / "broken.mp4").write_text("not a video\n")
    (root / "notes.txt").write_text("not listed: no video suffix\n")
    data = UnlabelledVideoDataModule(
        data_root=str(root), num_frames=4, frame_interval=2, train_crop_size=32, batch_size=6, num_workers=0
    )
    module = pretraining()
    fit = trainer(max_steps=-1, max_epochs=1, callbacks=[BrokenVideoLogger()])  # a CLI default callback
    with caplog.at_level(logging.WARNING):
        fit.fit(module, data)
    videos = [Path(v.path).relative_to(root).as_posix() for v in data.datasets["train"].videos]
    assert videos == [
        "five.mov",
        "a/two.mkv",
        "a/b/one.mp4",
        "c/broken.mp4",
        "c/three.webm",
        "d/e/f/four.avi",
    ]
    assert fit.global_step == 1  # one batch of 6 clips: the broken video was replaced by another
    # Counted each time it was drawn (a random replacement may draw it again), named once.
    skipped = int(fit.callback_metrics["data/broken_videos_train"])
    assert skipped >= 1
    assert f"epoch 0 train: skipped {skipped} broken videos: {root / 'c' / 'broken.mp4'}\n" in caplog.text


def test_validation_scores_the_reconstruction_on_the_same_masks_every_time(data_synthetic_root):
    clip = dict(num_frames=4, train_crop_size=32, val_short_side=32, val_crop_size=32, num_workers=0)
    data = UnlabelledVideoDataModule(
        data_root=str(data_synthetic_root), videos="train", val_videos="test", **clip
    )
    module = pretraining()
    fit = trainer(
        max_steps=-1, max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0
    )
    fit.fit(module, data)
    assert len(data.datasets["val"]) == 8 and "val/loss" in fit.callback_metrics
    scores = [fit.validate(module, data, verbose=False)[0]["val/loss"] for _ in range(2)]
    assert scores[0] == scores[1] > 0


def test_annotation_files_give_their_videos_whatever_their_labels(data_synthetic_root, tmp_path):
    records = unlabelled_videos(data_synthetic_root / "annotations" / "train.csv", data_synthetic_root)
    assert len(records) == 16 and {r.label for r in records} == {NO_LABEL}
    rows = list(csv.reader((data_synthetic_root / "annotations" / "train.csv").open()))
    renamed = tmp_path / "other_labels.csv"  # labels no class list knows
    with renamed.open("w", newline="") as file:
        csv.writer(file).writerows([rows[0], *([f"class {i}", *row[1:]] for i, row in enumerate(rows[1:]))])
    assert unlabelled_videos(renamed, data_synthetic_root) == records
    listed = tmp_path / "list.txt"
    listed.write_text(f"{records[0].path} 7\n{records[1].path} 123\n")
    assert unlabelled_videos(listed, tmp_path) == records[:2]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no videos"):
        unlabelled_videos(tmp_path / "empty", tmp_path)


def test_a_generated_dataset_gives_its_training_split_and_a_folder_of_videos_is_read_as_it_is(tmp_path):
    spec = SyntheticSpec(train_per_class=2, val_per_class=1, test_per_class=1, num_frames=8, size=32)
    data = UnlabelledVideoDataModule(data_root=str(tmp_path / "generated"), synthetic=spec, num_workers=0)
    data.prepare_data()
    data.setup("fit")
    assert len(data.datasets["train"]) == 8 and data.classes == []
    assert all(Path(v.path).parent.name == "train" for v in data.datasets["train"].videos)
    own = make_synthetic_dataset(tmp_path / "own", spec) / "test"  # a folder of 4 videos, no classes.txt
    data = UnlabelledVideoDataModule(data_root=str(own), synthetic=spec, num_workers=0)
    data.prepare_data()  # not empty: nothing is generated into it
    data.setup("fit")
    assert sorted(p.name for p in own.iterdir()) == sorted(
        Path(v.path).name for v in data.datasets["train"].videos
    )


# -- pictures ----------------------------------------------------------------------------------------


def test_reconstruction_pictures_go_to_tensorboard_and_png(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="run")
    pictures = ReconstructionPictures(every_n_steps=2, num_clips=2, num_frames=3)
    trainer(max_steps=4, logger=logger, callbacks=[pictures]).fit(pretraining(), clips(8))
    folder = Path(logger.log_dir) / "reconstructions"
    assert sorted(p.name for p in folder.iterdir()) == ["step_0000002.png", "step_0000004.png"]
    image = decode_png(read_file(str(folder / "step_0000002.png")))
    # 2 clips x (original, masked, reconstructed) rows of 3 frames of 32 px, 2 px apart
    assert tuple(image.shape) == (3, 6 * 32 + 7 * 2, 3 * 32 + 4 * 2)
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert [e.step for e in events.Images("reconstructions")] == [2, 4]


# -- the configs, end to end -------------------------------------------------------------------------


def test_smoke_pretrain_on_a_folder_then_fine_tune_with_the_smoke_config(data_synthetic_root, tmp_path):
    out = tmp_path / "runs"
    common = [
        "--trainer.max_steps", "2",
        "--data.init_args.num_workers", "0",
        "--trainer.enable_progress_bar", "false",
        # small clips (the configs' own take minutes on a busy 2-core machine)
        "--data.init_args.num_frames", "8",
        "--data.init_args.train_crop_size", "32",
    ]  # fmt: skip
    pretrain = check(
        run_cli_in_process(
            "fit", "-c", "configs/smoke_pretrain.yaml",
            "--data.init_args.data_root", str(data_synthetic_root / "train"),
            "--trainer.logger.init_args.save_dir", str(out),
            "--trainer.callbacks.init_args.every_n_steps", "1",
            *common,
        )
    )  # fmt: skip
    run = out / "smoke_pretrain" / "version_0"
    ckpt = run / "checkpoints" / "last.ckpt"
    assert f"latest checkpoint: {ckpt}" in pretrain.stdout
    assert (run / "reconstructions" / "step_0000002.png").is_file()
    finetune = check(
        run_cli_in_process(
            "fit", "-c", "configs/smoke.yaml",
            "--data.init_args.data_root", str(data_synthetic_root),
            "--model.init_args.pretrained", str(ckpt),
            "--trainer.logger.init_args.save_dir", str(out),
            "--trainer.limit_val_batches", "1",
            "--data.init_args.val_short_side", "32",
            "--data.init_args.val_crop_size", "32",
            *common,
        )
    )  # fmt: skip
    assert f"loaded {ckpt} (videoswinv2 layout, 3D)" in finetune.stderr
    assert "head.fc.weight: the checkpoint has no classifier" in finetune.stderr
