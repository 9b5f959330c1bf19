"""KineticsDataModule: config parsing, synthetic data on first use, sharding, a full epoch."""

import dataclasses
import logging
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from jsonargparse import ArgumentParser

from videoswinv2.data import (
    SYNTHETIC_CLASSES,
    BrokenVideoLogger,
    KineticsDataModule,
    ShardSampler,
    SyntheticSpec,
)
from videoswinv2.errors import UsageError

SMALL = dict(  # the synthetic classes, clip and crop sizes for its 32 px videos
    class_names_file="classes.txt",
    num_frames=4,
    frame_interval=2,
    train_crop_size=32,
    val_short_side=32,
    val_crop_size=32,
    test_short_side=32,
    test_crop_size=32,
    num_test_clips=2,
    batch_size=2,
    num_workers=0,
)


def _list_file(path: Path, root: Path, split: str, count: int, broken: list[Path]) -> str:
    """A ``path label`` list of the first ``count`` synthetic ``split`` videos, with the
    ``broken`` files inserted from position 2 on."""
    classes = (root / "classes.txt").read_text().splitlines()
    entries = []
    for line in (root / "annotations" / f"{split}.csv").read_text().splitlines()[1 : count + 1]:
        label, youtube_id, start, end, _ = line.split(",")
        entries.append(f"{split}/{youtube_id}_{int(start):06d}_{int(end):06d}.mp4 {classes.index(label)}")
    entries[2:2] = [f"{file} 0" for file in broken]
    path.write_text("\n".join(entries) + "\n")
    return str(path)


def _odd_split(root: Path, broken: Path, tmp_path: Path) -> str:
    """5 videos: 4 synthetic test videos with a broken file at index 2."""
    return _list_file(tmp_path / "odd.txt", root, "test", 4, [broken])


def test_shard_sampler_covers_every_index_once() -> None:
    shards = [list(ShardSampler(7, rank, 2)) for rank in range(2)]
    assert shards == [[0, 2, 4, 6], [1, 3, 5]]
    assert [len(ShardSampler(7, rank, 2)) for rank in range(2)] == [4, 3]
    with pytest.raises(ValueError, match="rank 2 is outside a world of 2"):
        ShardSampler(7, 2, 2)


@pytest.mark.parametrize("val_views", [False, True])
def test_two_simulated_ranks_evaluate_every_video_once(
    val_views, data_synthetic_root, data_broken_videos, tmp_path, monkeypatch
) -> None:
    split = _odd_split(data_synthetic_root, data_broken_videos["text"], tmp_path)
    seen: dict[str, list[int]] = {"val": [], "test": []}
    broken: list[str] = []
    for rank in range(2):
        dm = KineticsDataModule(
            str(data_synthetic_root),
            val_annotations=split,
            test_annotations=split,
            val_views=val_views,
            **SMALL,
        )
        monkeypatch.setattr(dm, "_rank_and_world", lambda rank=rank: (rank, 2))
        dm.setup("validate")
        dm.setup("test")
        for name, loader in (("val", dm.val_dataloader()), ("test", dm.test_dataloader())):
            videos: set[int] = set()
            for batch in loader:
                if "item" in batch:  # views streamed (test, and validation with val_views)
                    videos |= {item.index for item in batch["item"]}
                    assert all(item.num_views == 2 * 3 for item in batch["item"])
                    broken += [item.video for item, _ in batch["failed"]]
                else:
                    videos |= set(batch["index"].tolist())
                    broken += batch["broken"]
                assert "item" in batch if val_views or name == "test" else "item" not in batch
                if len(batch["video"]):
                    assert batch["video"].shape[1:] == (3, 4, 32, 32)
            seen[name] += sorted(videos)
    assert sorted(seen["val"]) == sorted(seen["test"]) == [0, 1, 3, 4]  # index 2 is the broken file
    assert broken == [str(data_broken_videos["text"])] * 2  # once in val, once in test (rank 0)


def test_training_sampler_gives_each_video_once_per_epoch(data_synthetic_root, monkeypatch) -> None:
    orders = []
    for epoch in range(2):
        indices = []
        for rank in range(2):
            dm = KineticsDataModule(str(data_synthetic_root), **SMALL)
            monkeypatch.setattr(dm, "_rank_and_world", lambda rank=rank: (rank, 2))
            sampler = dm.train_dataloader().sampler
            sampler.set_epoch(epoch)
            indices += [key.index for key in sampler]
        assert sorted(indices) == list(range(16))  # 16 training videos split evenly over 2 ranks
        orders.append(indices)
    assert orders[0] != orders[1]  # reshuffled every epoch


def _gloo_worker(rank: int, port: int, root: str, split: str, out: str) -> None:
    torch.set_num_threads(1)  # a forked rank leaves the parent's thread pool alone, as loader workers do
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        dm = KineticsDataModule(root, val_annotations=split, **SMALL)  # rank from torch.distributed
        dm.setup("validate")
        indices = [i for batch in dm.val_dataloader() for i in batch["index"].tolist()]
        gathered: list[list[int]] = [[], []]
        dist.all_gather_object(gathered, indices)
        if rank == 0:
            Path(out).write_text(repr(gathered))
    finally:
        dist.destroy_process_group()


def test_ranks_from_torch_distributed(data_synthetic_root, data_broken_videos, tmp_path) -> None:
    split = _odd_split(data_synthetic_root, data_broken_videos["empty"], tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "gathered.txt"
    # forked, not spawned: the two ranks start without importing torch and this module again
    mp.start_processes(
        _gloo_worker, args=(port, str(data_synthetic_root), split, str(out)), nprocs=2, start_method="fork"
    )
    assert eval(out.read_text()) == [[0, 4], [1, 3]]  # index 2 (rank 0) is the broken file


class _TinyModel(pl.LightningModule):
    """Mean colour -> class: just enough to run Lightning loops over real batches."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, num_classes)
        self.evaluated: list[int] = []
        self.trained: list[dict] = []

    def _logits(self, batch: dict) -> torch.Tensor:
        return self.head(batch["video"].mean(dim=(-3, -2, -1)))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.trained.append(batch)
        return F.cross_entropy(self._logits(batch), batch["label"])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if batch["label"].numel():  # a batch of broken videos holds none
            self.evaluated += batch["index"].tolist()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("clips_per_video", [1, 3])
def test_an_epoch_with_broken_videos_completes_and_reports_them(
    clips_per_video, data_synthetic_root, data_broken_videos, tmp_path, caplog
) -> None:
    bad = [data_broken_videos[kind] for kind in ("truncated", "empty", "text", "audio_only")]
    with caplog.at_level(logging.WARNING):
        train = _list_file(
            tmp_path / "train.txt",
            data_synthetic_root,
            "train",
            16,
            [*bad, data_broken_videos["missing"]],
        )
        val = _odd_split(data_synthetic_root, data_broken_videos["audio_only"], tmp_path)
        dm = KineticsDataModule(
            str(data_synthetic_root),
            train_annotations=train,
            val_annotations=val,
            clips_per_video=clips_per_video,
            **SMALL,
        )
        model = _TinyModel(len(dm.classes))
        trainer = pl.Trainer(
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            use_distributed_sampler=False,
            default_root_dir=tmp_path,
            callbacks=[BrokenVideoLogger()],  # one of the CLI's default callbacks
        )
        trainer.fit(model, datamodule=dm)
    assert "1 of 21 listed videos are missing" in caplog.text  # left out before training
    # 16 + 4 broken videos, 2 per batch: k clips per video change neither the steps nor the schedule.
    assert trainer.current_epoch == 1 and trainer.global_step == trainer.estimated_stepping_batches == 10
    for batch in model.trained:  # 2 videos of k clips each, as k rows per video
        assert batch["video"].shape == (2 * clips_per_video, 3, 4, 32, 32)
        assert torch.equal(
            batch["label"], batch["label"][::clips_per_video].repeat_interleave(clips_per_video)
        )
        assert torch.equal(
            batch["index"], batch["index"][::clips_per_video].repeat_interleave(clips_per_video)
        )
    assert sorted(model.evaluated) == [0, 1, 3, 4]
    assert trainer.callback_metrics["data/broken_videos_train"] >= len(bad)
    assert trainer.callback_metrics["data/broken_videos_val"] == 1
    assert sum(isinstance(c, BrokenVideoLogger) for c in trainer.callbacks) == 1
    assert f"epoch 0 val: skipped 1 broken videos: {data_broken_videos['audio_only']}" in caplog.text
    train_line = next(line for line in caplog.text.splitlines() if "epoch 0 train: skipped" in line)
    assert all(str(path) in train_line for path in bad)


def test_lightning_sampler_replacement_is_refused(data_synthetic_root) -> None:
    dm = KineticsDataModule(str(data_synthetic_root), **SMALL)
    dm.trainer = SimpleNamespace(  # what Lightning attaches; only the fields setup reads
        global_rank=0,
        world_size=2,
        callbacks=[],
        _accelerator_connector=SimpleNamespace(use_distributed_sampler=True),
    )
    with pytest.raises(ValueError, match="use_distributed_sampler=False"):
        dm.setup("fit")


def test_synthetic_data_is_written_on_first_use(tmp_path) -> None:
    spec = SyntheticSpec(
        num_classes=2, train_per_class=2, val_per_class=1, test_per_class=1, num_frames=8, size=32
    )
    root = tmp_path / "synthetic"
    dm = KineticsDataModule(str(root), synthetic=spec, **{**SMALL, "class_names_file": None})
    assert dm.classes == list(SYNTHETIC_CLASSES[:2])  # known before any file exists
    dm.prepare_data()
    dm.prepare_data()  # a second call finds the data in place
    dm.setup("fit")
    assert [len(dm.datasets[s]) for s in ("train", "val")] == [4, 2]
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, 3, 4, 32, 32)
    other = tmp_path / "occupied"
    other.mkdir()
    (other / "something.txt").write_text("")
    with pytest.raises(UsageError, match="not an empty directory"):
        KineticsDataModule(str(other), synthetic=spec).prepare_data()


def test_synthetic_spec_is_saved_as_plain_data(tmp_path) -> None:
    """Checkpoints hold the data module's hparams; a dataclass there would make them unreadable
    with weights_only=True (predict, pretrained=) unless its class were allow-listed."""
    spec = SyntheticSpec(num_classes=2, size=32)
    dm = KineticsDataModule(str(tmp_path / "synthetic"), synthetic=spec)
    assert dm.hparams["synthetic"] == dataclasses.asdict(spec) and dm.synthetic == spec
    torch.save({"datamodule_hyper_parameters": dict(dm.hparams)}, tmp_path / "x.ckpt")  # as Lightning
    saved = torch.load(tmp_path / "x.ckpt", weights_only=True)["datamodule_hyper_parameters"]
    assert KineticsDataModule(**saved).synthetic == spec  # rebuilt from the checkpoint


def test_classes_come_from_the_class_file_or_else_the_data(data_synthetic_root, tmp_path) -> None:
    dm = KineticsDataModule(str(data_synthetic_root), class_names_file="classes.txt")
    assert dm.classes == list(SYNTHETIC_CLASSES) and dm.num_classes == 4
    # No class file: the training CSV's labels, sorted, rather than Kinetics-400's 400 names.
    assert KineticsDataModule(str(data_synthetic_root)).classes == sorted(SYNTHETIC_CLASSES)
    with pytest.raises(UsageError, match=r"nope\.txt"):
        assert KineticsDataModule(str(tmp_path), class_names_file="nope.txt").classes
    with pytest.raises(UsageError, match="no class names file and no annotations"):
        assert KineticsDataModule(str(tmp_path)).num_classes


def test_classes_without_a_training_video_are_an_error_naming_them(data_synthetic_root, tmp_path) -> None:
    (tmp_path / "classes.txt").write_text("\n".join([*SYNTHETIC_CLASSES, "juggling", "surfing"]) + "\n")
    dm = KineticsDataModule(
        str(data_synthetic_root), **{**SMALL, "class_names_file": str(tmp_path / "classes.txt")}
    )
    with pytest.raises(
        UsageError, match=r"2 of 6 classes have no training video in .*train\.csv: 'juggling', 'surfing'"
    ):
        dm.setup("fit")


def test_missing_split_is_a_clear_error(data_synthetic_root) -> None:
    dm = KineticsDataModule(str(data_synthetic_root), test_annotations=None, **SMALL)
    with pytest.raises(ValueError, match="no test_annotations given"):
        dm.setup("test")


def test_training_without_a_validation_split(data_synthetic_root) -> None:
    dm = KineticsDataModule(str(data_synthetic_root), val_annotations=None, **SMALL)
    dm.setup("fit")
    assert "val" not in dm.datasets and dm.val_dataloader() == []
    with pytest.raises(ValueError, match="no val_annotations given"):
        dm.setup("validate")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"random_erasing": 1.5}, r"random_erasing is a probability, in \[0, 1\], got 1\.5"),
        (
            {"random_erasing_area": (0.3, 0.1)},
            r"random_erasing_area must be \(min, max\) .* got \[0\.3, 0\.1\]",
        ),
        ({"random_erasing_area": (0.0, 0.3)}, r"0 < min <= max <= 1"),
    ],
)
def test_random_erasing_settings_are_checked(tmp_path, setting, message) -> None:
    with pytest.raises(UsageError, match=message):
        KineticsDataModule(str(tmp_path), **setting)


def test_lightning_cli_can_fill_the_arguments(tmp_path) -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(KineticsDataModule, "data")
    config = parser.parse_string(
        f"data:\n  data_root: {tmp_path}\n  decoder: decord\n  num_frames: 8\n"
        "  train_scale: [0.2, 1.0]\n  synthetic:\n    num_classes: 3\n    size: 32\n"
    )
    dm = parser.instantiate(config).data
    assert isinstance(dm, KineticsDataModule)
    assert dm.hparams.decoder == "decord" and dm.clip.num_frames == 8
    assert dm.synthetic == SyntheticSpec(num_classes=3, size=32)
    assert dm.classes == list(SYNTHETIC_CLASSES[:3])
    with pytest.raises(Exception, match="decoder"):
        parser.parse_string("data:\n  data_root: x\n  decoder: opencv\n")


@pytest.mark.torchcodec
def test_frames_are_resized_while_decoding_where_the_transforms_start_with_a_resize(
    data_synthetic_root,
) -> None:
    # Validation always (its transform starts with that resize); training with train_short_side
    # (Video Swin's short side 256 before the random resized crop), else from the decoded frames.
    settings = {**SMALL, "decoder": "torchcodec"}
    dm = KineticsDataModule(str(data_synthetic_root), **settings)
    dm.setup("fit")
    assert (dm.datasets["train"].short_side, dm.datasets["val"].short_side) == (None, 32)
    dm = KineticsDataModule(str(data_synthetic_root), train_short_side=40, **settings)
    dm.setup("fit")
    assert dm.datasets["train"].short_side == 40
    assert dm.datasets["train"][0]["video"][0].shape == (3, 4, 32, 32)
