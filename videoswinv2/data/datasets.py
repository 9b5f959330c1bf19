"""Map-style video datasets of training and single-clip validation, and the collate functions
(multi-view evaluation streams views instead: :mod:`videoswinv2.data.view_stream`).

A sample is a dict: ``video``, ``label``, ``index`` (the video's position in
``dataset.videos``) and ``broken``, the paths that failed to decode while producing it. A label is
a class index, or for multi-label videos a multi-hot ``(K,)`` float tensor: in training the
actions that overlap the clip's frames (PySlowFast's Charades rule), in validation the video's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from videoswinv2.data.annotations import Target, VideoRecord, target_classes
from videoswinv2.data.clip_planning import ClipSpec, center_clip, train_clips
from videoswinv2.data.clip_reading import read_clips
from videoswinv2.data.decoding import DecoderName, VideoDecodeError, open_video
from videoswinv2.data.sampling import SampleKey, seeded_rng
from videoswinv2.data.transforms import TrainTransform
from videoswinv2.errors import WorkFailed

log = logging.getLogger(__name__)

Sample = dict[str, Any]


class VideoClipDataset(Dataset[Sample]):
    """Random training clips (``mode="train"``) or the centre clip (``"val"``) of each video.

    In training ``video`` is a list of ``clips_per_video`` ``(C, T, H, W)`` clips at random starts,
    decoded together (each frame once), each with its own ``transform`` draw (``(T, H, W, C)``
    uint8 to ``(C, T, H, W)`` float); a broken video is replaced by a random other one (after
    ``max_replacements`` in a row, a ``WorkFailed`` names the files). In validation ``video`` is
    the centre clip, or None for a broken video, which :func:`collate_videos` drops uncounted.
    ``short_side``: frames are resized to it as they are decoded, before ``transform``.

    ``label`` is a list of one target per clip in training: a clip may be flipped, which with
    ``mirror`` (class -> the class it shows flipped; ``transform`` must then be a
    :class:`TrainTransform`) changes its label, and a multi-label clip is labelled by the actions
    it overlaps. ``num_classes``: the length of multi-hot targets (multi-label videos only).
    """

    def __init__(
        self,
        videos: Sequence[VideoRecord],
        *,
        mode: Literal["train", "val"],
        transform: Callable[[torch.Tensor], torch.Tensor],
        clip: ClipSpec | None = None,
        decoder: DecoderName = "pyav",
        max_replacements: int = 50,
        clips_per_video: int = 1,
        short_side: int | None = None,
        mirror: Mapping[int, int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        if mode not in ("train", "val"):
            raise ValueError(f"mode must be 'train' or 'val', got {mode!r}")
        if clips_per_video < 1 or (mode == "val" and clips_per_video != 1):
            raise ValueError(
                f"clips_per_video must be >= 1 in training and 1 in validation, got {clips_per_video}"
            )
        if not videos:
            raise ValueError("a dataset needs at least one video")
        if mirror and not isinstance(transform, TrainTransform):
            raise ValueError("mirror needs a TrainTransform, which says whether it flipped a clip")
        if num_classes is None and any(video.multi_label for video in videos):
            raise ValueError("multi-label videos need num_classes, the length of their targets")
        self.videos = list(videos)
        self.mode = mode
        self.transform = transform
        self.clip = clip or ClipSpec()
        self.decoder = decoder
        self.max_replacements = max_replacements
        self.clips_per_video = clips_per_video
        self.short_side = short_side
        self.mirror = dict(mirror or {})
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.videos)

    def _load(self, index: int) -> tuple[torch.Tensor | list[torch.Tensor], Any]:
        """The clip (validation) or clips (training) of video ``index`` and their label(s)."""
        record = self.videos[index]
        with open_video(record.path, self.decoder, short_side=self.short_side) as reader:
            total, fps = reader.num_frames, reader.fps
            if self.mode == "val":
                [clip] = read_clips(reader, [center_clip(total, fps, self.clip)])
                return self.transform(clip), self._label(record.target)
            plans = train_clips(total, fps, self.clip, self.clips_per_video)
            clips, labels = [], []
            for plan, frames in zip(plans, read_clips(reader, plans)):
                target = (
                    record.target_between(min(plan) / fps, (max(plan) + 1) / fps)
                    if fps > 0
                    else record.target
                )
                if self.mirror:
                    clip, flipped = self.transform.apply(frames)  # type: ignore[attr-defined]
                    target = self._mirrored(target) if flipped else target
                else:
                    clip = self.transform(frames)
                clips.append(clip)
                labels.append(self._label(target))
            return clips, labels

    def _mirrored(self, target: Target) -> Target:
        if isinstance(target, int):
            return self.mirror.get(target, target)
        return frozenset(self.mirror.get(label, label) for label in target)

    def _label(self, target: Target) -> int | torch.Tensor:
        """A class index as it is; a multi-label target as a multi-hot ``(K,)`` float tensor."""
        return target if isinstance(target, int) else multi_hot([target], self.num_classes or 0)[0]

    def __getitem__(self, key: int | SampleKey) -> Sample:
        """The sample of video ``key``; with a :class:`SampleKey` (what the training sampler
        yields), every random draw of the sample (clip starts, crop, flip, RandAugment, the
        video replacing a broken one) comes from the key's seed, whichever worker loads it."""
        if isinstance(key, SampleKey):
            with seeded_rng(key.seed):
                return self._sample(key.index)
        return self._sample(key)

    def _sample(self, index: int) -> Sample:
        broken: list[str] = []
        while True:
            record = self.videos[index]
            try:
                video, label = self._load(index)
            except VideoDecodeError as error:
                _warn_broken(error)
                broken.append(record.path)
                if self.mode == "val":
                    label = self._label(record.target)
                    return {"video": None, "label": label, "index": index, "broken": broken}
                if len(broken) > self.max_replacements:
                    distinct = list(dict.fromkeys(broken))
                    raise WorkFailed(
                        f"{len(broken)} videos in a row failed to decode ({len(distinct)} distinct files, "
                        f"e.g. {', '.join(distinct[:5])}): check the data root and the decoder"
                    ) from error
                index = int(torch.randint(len(self.videos), (1,)))
                continue
            return {"video": video, "label": label, "index": index, "broken": broken}


_warned: set[str] = set()


def _warn_broken(error: VideoDecodeError) -> None:
    """Say why a video was skipped, once per file and process (epochs repeat the same files)."""
    message = str(error)
    if message not in _warned:
        _warned.add(message)
        log.warning("skipping broken video: %s", message)


def multi_hot(targets: Sequence[Target], num_classes: int) -> torch.Tensor:
    """Targets (class indices or sets of them) -> ``(N, num_classes)`` float, 1 at each class."""
    hot = torch.zeros(len(targets), num_classes)
    for row, target in enumerate(targets):
        hot[row, list(target_classes(target))] = 1.0
    return hot


def collate_clips(samples: list[Sample]) -> dict[str, Any]:
    """Training batch of B samples with k clips each: :func:`collate_videos` over their B * k
    clips, ``video`` ``(B * k, C, T, H, W)``, each clip's ``label``, ``index`` repeated per clip."""
    clips = [
        {"video": clip, "label": label, "index": s["index"], "broken": s["broken"] if k == 0 else []}
        for s in samples
        for k, (clip, label) in enumerate(zip(s["video"], s["label"]))
    ]
    return collate_videos(clips)


def collate_videos(samples: list[Sample]) -> dict[str, Any]:
    """Stack samples into a batch, leaving out those whose video failed to decode: ``video`` ``(B,
    ...)`` (``(0,)`` for none), ``label`` ``(B,)`` int64 (multi-label: ``(B, K)`` float), ``index``
    ``(B,)`` int64, and every sample's ``broken``."""
    kept = [sample for sample in samples if sample["video"] is not None]
    labels = [s["label"] for s in kept]
    multi_hot = bool(labels) and isinstance(labels[0], torch.Tensor)
    return {
        "video": torch.stack([s["video"] for s in kept]) if kept else torch.empty(0),
        "label": torch.stack(labels) if multi_hot else torch.tensor(labels, dtype=torch.long),
        "index": torch.tensor([s["index"] for s in kept], dtype=torch.long),
        "broken": [path for sample in samples for path in sample["broken"]],
    }
