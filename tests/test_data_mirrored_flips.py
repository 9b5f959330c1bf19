"""Label-aware horizontal flips on a generated Something-Something V2 set: blocks pushed from
left to right or from right to left. Flipped clips labelled with the mirror class teach the
direction; a plain flip, which keeps the label, cannot (the test of the test)."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from videoswinv2 import create_model
from videoswinv2.data import VideoClipDataset, VideoDataModule, collate_clips, collate_videos
from videoswinv2.data.offline.synthetic import write_mp4

CLASSES = ("Pushing something from left to right", "Pushing something from right to left")
SIZE, FRAMES = 32, 16


def _write_split(labels: Path, split: str, rows: list[tuple[str, str]]) -> None:
    """``labels/{split}.json`` listing ``(id, class)`` rows as SSv2 does."""
    entries = [
        {"id": id_, "label": name.lower(), "template": name.replace("something", "[something]")}
        for id_, name in rows
    ]
    (labels / f"{split}.json").write_text(json.dumps(entries))


def _pushed_blocks(rng: np.random.Generator, left_to_right: bool) -> np.ndarray:
    """``(FRAMES, SIZE, SIZE, 3)`` uint8: random 4 px blocks moving 1 px per frame to the right,
    or (the same frames reversed) to the left: no single frame tells the two apart. Grey, because
    H.264's 4:2:0 keeps colour at half the resolution, too coarse for the blocks' edges."""
    grey = rng.integers(0, 256, (SIZE // 4, (SIZE + FRAMES) // 4, 1), dtype=np.uint8)
    texture = grey.repeat(4, axis=0).repeat(4, axis=1).repeat(3, axis=2)
    frames = np.stack([texture[:, FRAMES - k : FRAMES - k + SIZE] for k in range(FRAMES)])
    return frames if left_to_right else frames[::-1].copy()


@pytest.fixture(scope="module")
def pushing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``labels/{labels,train,validation}.json`` and ``videos/<id>.mp4`` (16 frames of 32 px):
    16 training and 10 validation videos of each class."""
    root = tmp_path_factory.mktemp("ssv2")
    (root / "labels").mkdir()
    (root / "videos").mkdir()
    (root / "labels" / "labels.json").write_text(json.dumps({name: str(i) for i, name in enumerate(CLASSES)}))
    rng, ids = np.random.default_rng(0), itertools.count(100)
    for split, per_class in (("train", 16), ("validation", 10)):
        rows = []
        for label, name in enumerate(CLASSES):
            for _ in range(per_class):
                id_ = str(next(ids))
                write_mp4(root / "videos" / f"{id_}.mp4", _pushed_blocks(rng, label == 0), fps=12)
                rows.append((id_, name))
        _write_split(root / "labels", split, rows)
    return root


def _data(root: Path, **kwargs) -> VideoDataModule:
    settings = dict(
        video_dir="videos",
        num_frames=8,
        frame_interval=1,
        train_crop_size=SIZE,
        train_scale=(0.6, 1.0),
        val_short_side=SIZE,
        val_crop_size=SIZE,
        num_workers=0,
    )
    return VideoDataModule(
        str(root), "labels/train.json", "labels/validation.json", None, **{**settings, **kwargs}
    )


def _plain_flip(train: VideoClipDataset) -> VideoClipDataset:
    """``train``'s videos and transform without the mirror: flipped clips keep their label."""
    return VideoClipDataset(train.videos, mode="train", clip=train.clip, transform=train.transform)


def _moves_right(clip: torch.Tensor) -> bool:
    """Whether a ``(C, T, H, W)`` clip's blocks move right: each frame matches the previous one
    shifted 1 px right better than shifted 1 px left (the motion is 1-1.3 px per frame)."""
    gray = clip.mean(0)
    right = (gray[1:, :, 1:] - gray[:-1, :, :-1]).square().mean()
    left = (gray[1:, :, :-1] - gray[:-1, :, 1:]).square().mean()
    return bool(right < left)


def test_a_flipped_clip_is_labelled_with_the_mirror_class(pushing, caplog) -> None:
    with caplog.at_level(logging.INFO):
        data = _data(pushing)
        data.setup("fit")
    train = data.datasets["train"]
    assert train.mirror == {0: 1, 1: 0}
    assert f"mirrored class pairs: 1 (e.g. {CLASSES[0]!r} <-> {CLASSES[1]!r})" in caplog.text
    plain = _plain_flip(train)
    torch.manual_seed(0)
    flipped, contradicted = 0, 0
    for index in range(len(train)):
        sample = train[index]
        [label], [clip] = sample["label"], sample["video"]
        assert label == (0 if _moves_right(clip) else 1)  # the label says where the blocks go
        flipped += label != train.videos[index].label
        [label], [clip] = plain[index]["label"], plain[index]["video"]
        contradicted += label != (0 if _moves_right(clip) else 1)
    assert flipped > 0 and contradicted > 0


def test_classes_that_say_left_or_right_without_a_mirror_are_named(pushing, caplog) -> None:
    labels = pushing / "labels_holding"
    labels.mkdir()
    classes = [*CLASSES, "Holding something in the right hand"]
    (labels / "labels.json").write_text(json.dumps({name: str(i) for i, name in enumerate(classes)}))
    _write_split(labels, "train", [(str(100 + i), name) for i, name in enumerate(classes)])  # any videos
    data = VideoDataModule(str(pushing), "labels_holding/train.json", None, None, video_dir="videos")
    with caplog.at_level(logging.WARNING):
        data.setup("fit")
    assert data.datasets["train"].mirror == {0: 1, 1: 0}
    assert "whose mirror (left and right exchanged) is no class" in caplog.text
    assert "'Holding something in the right hand'" in caplog.text
    unflipped = VideoDataModule(
        str(pushing), "labels_holding/train.json", None, None, video_dir="videos", train_flip=False
    )
    unflipped.setup("fit")
    assert unflipped.datasets["train"].mirror == {}


def _held_out_accuracy(train: VideoClipDataset, val: VideoClipDataset, steps: int = 150) -> float:
    """Train a tiny model for ``steps`` batches of 8 clips of ``train``; its top-1 on ``val``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ops this small run as fast on one thread, and never wait for a busy core
    try:
        torch.manual_seed(0)
        model = create_model(
            "videoswinv2_tiny",
            num_classes=2,
            embed_dim=16,
            depths=(1,),
            num_heads=(2,),
            window_size=(4, 8, 8),  # the whole clip: (8 frames / 2) x (32 px / 4)^2
            pretrained_window_sizes=(0,),
            drop_path_rate=0.0,
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
        loader = DataLoader(train, batch_size=8, shuffle=True, collate_fn=collate_clips)
        step = 0
        while step < steps:
            for batch in loader:
                loss = torch.nn.functional.cross_entropy(model(batch["video"]), batch["label"])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                if step == steps:
                    break
        model.eval()
        with torch.no_grad():
            batch = collate_videos([val[i] for i in range(len(val))])
            return int((model(batch["video"]).argmax(1) == batch["label"]).sum()) / len(val)
    finally:
        torch.set_num_threads(threads)


def test_training_with_the_label_aware_flip_learns_the_direction(pushing) -> None:
    data = _data(pushing)
    data.setup("fit")
    assert _held_out_accuracy(data.datasets["train"], data.datasets["val"]) >= 0.95


def test_training_with_a_plain_flip_does_not(pushing) -> None:
    """The test of the test: the same training, with flipped clips keeping their label."""
    data = _data(pushing)
    data.setup("fit")
    assert _held_out_accuracy(_plain_flip(data.datasets["train"]), data.datasets["val"]) < 0.95
