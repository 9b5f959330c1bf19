"""``VideoDataModule`` (also ``KineticsDataModule``): labelled video datasets for Lightning,
sharded by the module itself (the Trainer runs with ``use_distributed_sampler=False``).

Training shuffles with a :class:`ResumableSampler` in a torchdata ``StatefulDataLoader`` whose
position every checkpoint keeps, so a run resumed mid-epoch sees the batches an uninterrupted one
would; validation and test give rank ``r`` the videos ``r, r + world, ...`` with no padding, so
every video is evaluated exactly once however many devices there are.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler
from torchdata.stateful_dataloader import StatefulDataLoader

from videoswinv2.data.annotations import Subset, VideoRecord, read_class_names, target_classes
from videoswinv2.data.clip_planning import ClipPlacement, ClipSpec, Sampling, ShortVideo
from videoswinv2.data.datasets import VideoClipDataset, collate_clips, collate_videos
from videoswinv2.data.decoding import DecoderName
from videoswinv2.data.formats import check_format, dataset_classes, is_multi_label, read_annotations
from videoswinv2.data.geometry import ClipGeometry
from videoswinv2.data.offline.synthetic import SyntheticSpec, make_synthetic_dataset
from videoswinv2.data.run_identity import file_identity, global_seed, video_list_identity
from videoswinv2.data.sampling import ResumableSampler
from videoswinv2.data.transforms import EvalTransform, TrainTransform, mirrored_classes
from videoswinv2.data.view_stream import MultiViewTask, multi_view_tasks, view_loader
from videoswinv2.data.views import check_views
from videoswinv2.data.workers import outlive_job_signals
from videoswinv2.errors import UsageError
from videoswinv2.record import EvalViews

log = logging.getLogger(__name__)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of ``range(size)``: each index on exactly one rank,
    nothing padded or dropped (shards differ in length by at most one)."""

    def __init__(self, size: int, rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside a world of {world}")
        self.size, self.rank, self.world = size, rank, world

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world))


def _check_counts(settings: Any) -> None:
    """Sizes and counts the loaders would refuse later, with a traceback, refused now by name."""
    sizes = ("train_crop_size", "val_short_side", "val_crop_size", "test_short_side", "test_crop_size")
    for name in ("batch_size", "test_batch_size", "clips_per_video", *sizes, "num_test_clips"):
        if settings[name] < 1:
            raise UsageError(f"{name} must be >= 1, got {settings[name]}")
    if settings["num_workers"] < 0:
        raise UsageError(
            f"num_workers must be >= 0 (0 loads in the main process), got {settings['num_workers']}"
        )


class VideoDataModule(pl.LightningDataModule):
    """Train / val / test loaders over the annotations of any format of
    ``videoswinv2.data.formats``; its defaults are the Kinetics recipe. ``classes`` are known
    before ``setup`` (read on first use). Batches are dicts: ``video`` ``(B, C, T, H, W)``
    (``(B * clips_per_video, ...)`` in training; views of ``test_batch_size`` videos for test, and
    for val with ``val_views``), ``label`` and ``index`` ``(B,)``, and ``broken`` (paths skipped).

    A module that finds its videos another way overrides :meth:`read_classes` and
    :meth:`split_videos` (as ``UnlabelledVideoDataModule`` does).
    """

    def __init__(
        self,
        data_root: str | None = None,
        train_annotations: str | None = "annotations/train.csv",
        val_annotations: str | None = "annotations/val.csv",
        test_annotations: str | None = "annotations/test.csv",
        class_names_file: str | None = None,
        annotation_format: str = "auto",
        split: int = 1,
        video_dir: str | None = None,
        decoder: DecoderName = "pyav",
        num_frames: int = EvalViews.num_frames,
        frame_interval: int = EvalViews.frame_interval,
        target_fps: float | None = None,
        frame_sampling: Sampling = "interval",
        short_video: ShortVideo = "repeat_last",
        clips_per_video: int = 1,
        train_crop_size: int = 224,
        train_short_side: int | None = None,
        train_scale: tuple[float, float] = (0.08, 1.0),
        train_flip: bool = True,
        rand_augment: bool = False,
        rand_augment_ops: int = 2,
        rand_augment_magnitude: int = 9,
        random_erasing: float = 0.0,
        random_erasing_area: tuple[float, float] = (0.02, 1 / 3),
        val_short_side: int = 256,
        val_crop_size: int = 224,
        val_views: bool = False,
        test_short_side: int = EvalViews.short_side,
        test_crop_size: int = EvalViews.crop_size,
        num_test_clips: int = EvalViews.num_clips,
        test_clip_placement: ClipPlacement = "uniform",
        test_view_reduction: str = EvalViews.reduction,
        videos_without_labels: str = "keep",
        batch_size: int = 8,
        test_batch_size: int = 1,
        num_workers: int = 8,
        seed: int = 0,
        synthetic: SyntheticSpec | None = None,
    ) -> None:
        """
        Args:
            data_root: folder of the dataset; relative paths below are relative to it.
            train_annotations: the training split's annotations in ``annotation_format`` (a
                Kinetics CSV, a list file, a folder, UCF101's or HMDB51's split folder, SSv2's
                ``train.json``); None if there is no such split (likewise val and test).
            val_annotations: the validation split.
            test_annotations: the test split (multi-view evaluation).
            class_names_file: the class names in label order (one per line, ``classInd.txt`` or
                ``labels.json``); default: the synthetic classes, else the dataset's own.
            annotation_format: "auto" (detected where only one layout fits) or a format's name
                (``videoswinv2.data.formats``: built-in or registered).
            split: the official split (1-3) a UCF101 or HMDB51 split folder gives.
            video_dir: folder the annotations' video paths are relative to (default ``data_root``).
            decoder: "pyav", "decord" or "torchcodec" (decord and torchcodec hand files they
                would misnumber to PyAV).
            num_frames: frames per clip.
            frame_interval: frames between consecutive clip frames.
            target_fps: count ``frame_interval`` at this frame rate instead of the video's.
            frame_sampling: "interval" or "segments" (one frame per equal part of the whole video:
                Video Swin's SSv2 sampling; one test clip); see ``clip_planning``.
            short_video: "repeat_last" or "loop" (mmaction's): what fills a clip past a video's end.
            clips_per_video: training clips cut from one decode of each video, each with its
                own random start, crop and flip: a batch holds ``batch_size`` videos, so
                ``batch_size * clips_per_video`` clips, and an epoch as many steps.
            train_crop_size: side of the random resized crop.
            train_short_side: resize the short side to this while decoding, before the random
                resized crop (Video Swin's 256); None crops the decoded frames, which selects the
                same region and resizes once.
            train_scale: area range of the random resized crop (aspect 3/4 to 4/3).
            train_flip: random horizontal flips; a flipped clip of a class whose name says left or
                right takes the label of the class named with the two words exchanged (SSv2's
                "Pushing something from left to right" <-> "... right to left").
            rand_augment: torchvision RandAugment on training clips (same ops on every frame).
            rand_augment_ops: RandAugment operations per clip.
            rand_augment_magnitude: RandAugment magnitude (0-30).
            random_erasing: probability of erasing one random box of a training clip, the same box
                on every frame, filled with the mean colour (Video Swin's SSv2 recipe: 0.25).
            random_erasing_area: area range of the erased box, as fractions of the crop (aspect
                0.3 to 3.3).
            val_short_side: validation resize of the short side, before the centre crop.
            val_crop_size: validation centre crop.
            val_views: validate on the test views (and ``test_batch_size``), not one centre clip.
            test_short_side: test resize of the short side, before the three crops.
            test_crop_size: side of the three test crops.
            num_test_clips: temporal clips per test video (views = 3 x this).
            test_clip_placement: "uniform" (first to last possible start: PySlowFast) or
                "segment_centres" (mmaction 0.x, which Video Swin's published numbers used).
            test_view_reduction: how a test video's view probabilities make its own: "mean" or
                "max" (PySlowFast's for Charades: an action seen in one clip is in the video).
            videos_without_labels: multi-label data: "keep" a video with no action as an
                all-negative example (as PySlowFast's Charades loader keeps clips over no action)
                or "drop" it.
            batch_size: training (and single-clip validation) batch size per device.
            test_batch_size: multi-view batch size per device, in videos.
            num_workers: DataLoader worker processes per device.
            seed: seed of the training order and augmentation (>= 0), the same on every rank.
            synthetic: generate this synthetic dataset into ``data_root`` on first use.
        """
        super().__init__()
        self.save_hyperparameters()
        _check_counts(self.hparams)
        check_format(annotation_format)
        if videos_without_labels not in ("keep", "drop"):
            raise UsageError(f"videos_without_labels must be 'keep' or 'drop', got {videos_without_labels!r}")
        # What each split is read from (None: there is no such split), as given to this class.
        self.split_sources = {"train": train_annotations, "val": val_annotations, "test": test_annotations}
        if isinstance(synthetic, dict):  # as hparams hold it, e.g. when rebuilt from a checkpoint
            synthetic = SyntheticSpec(**synthetic)
        if synthetic is not None:
            # Plain data in hparams (LightningCLI gives a dict there; Python code the object), so
            # that checkpoints load with weights_only=True and no allow-listed class.
            self.hparams["synthetic"] = dataclasses.asdict(synthetic)
        low, high = train_scale
        if not 0 < low <= high:
            raise UsageError(
                f"train_scale must be (min, max) area fractions with 0 < min <= max, got {list(train_scale)}"
            )
        if not 0 <= random_erasing <= 1:
            raise UsageError(f"random_erasing is a probability, in [0, 1], got {random_erasing}")
        low, high = random_erasing_area
        if not 0 < low <= high <= 1:
            raise UsageError(
                "random_erasing_area must be (min, max) area fractions with 0 < min <= max <= 1, "
                f"got {list(random_erasing_area)}"
            )
        self._data_root = data_root
        self.clip = ClipSpec(num_frames, frame_interval, target_fps, frame_sampling, short_video)
        check_views(self.test_views)  # checks the test settings now, not at the first test
        self.synthetic = synthetic
        self._classes: list[str] | None = None
        self.datasets: dict[str, Dataset | list[MultiViewTask]] = {}
        self._train_loader: StatefulDataLoader | None = None
        self._saved_state: dict[str, Any] = {}  # from a checkpoint, for the next training loader
        self._data_identity: dict[str, Any] | None = None  # run_identity's data part, read once

    @property
    def root(self) -> Path:
        # Checked on first use rather than in __init__, where LightningCLI would bury the message.
        if self._data_root is None:
            raise UsageError(
                "data_root is not set: pass --data.init_args.data_root DIR, the folder that holds "
                "the videos and the annotation files (or set data.init_args.data_root in the config)"
            )
        root = Path(self._data_root)
        if root.exists() and not root.is_dir():
            raise UsageError(
                f"data_root {root} is a file: name the folder that holds the videos and annotations"
            )
        return root

    def _path(self, path: str) -> Path:
        return self.root / path  # an absolute path stays absolute

    @property
    def video_root(self) -> Path:
        """The folder the annotations' video paths are relative to."""
        video_dir = self.hparams.video_dir
        return self.root if video_dir is None else self._path(video_dir)

    @property
    def classes(self) -> list[str]:
        """The class names in label order (read on first use)."""
        if self._classes is None:
            self._classes = self.read_classes()
        return self._classes

    @property
    def num_classes(self) -> int:
        """The number of classes: what the model's head must output (the CLI links the two)."""
        return len(self.classes)

    @property
    def multi_label(self) -> bool:
        """Whether videos have several labels each: the annotation format's (the CLI links the
        model's ``multi_label`` to it)."""
        if self.synthetic is not None:
            return False
        source = next((path for path in self._given_sources() if path.exists()), None)
        return source is not None and is_multi_label(source, self.hparams.annotation_format)

    def _given_sources(self) -> list[Path]:
        """The annotation files or folders of the splits given, train first."""
        return [self._path(source) for source in self.split_sources.values() if source is not None]

    def read_classes(self) -> list[str]:
        """The class names in label order: the class names file's, else the synthetic dataset's,
        else those the first split's annotations define (``dataset_classes``)."""
        h = self.hparams
        names_file = None if h.class_names_file is None else self._path(h.class_names_file)
        if names_file is not None and names_file.is_file():
            return _classifiable(read_class_names(names_file), names_file)
        if self.synthetic is not None:
            return self.synthetic.classes  # the class file prepare_data writes holds the same
        if names_file is not None:
            raise UsageError(f"class names file {names_file} does not exist")
        given = self._given_sources()
        for source in given:
            if source.exists():
                return _classifiable(dataset_classes(source, h.annotation_format, h.split), source)
        raise UsageError(
            f"no class names file and no annotations to take the classes from: "
            f"{', '.join(map(str, given)) or 'no split given'} (check data_root)"
        )

    def _synthetic_due(self) -> bool:
        """Whether ``prepare_data`` is to write the synthetic dataset: not there yet."""
        return not (self.root / "classes.txt").is_file()

    def prepare_data(self) -> None:
        if self.synthetic is not None and self._synthetic_due():
            log.info("writing the synthetic dataset %s into %s", self.synthetic, self.root)
            make_synthetic_dataset(self.root, self.synthetic)

    def _rank_and_world(self) -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        if self.trainer is not None:
            return self.trainer.global_rank, self.trainer.world_size
        return 0, 1

    def split_videos(self, split: Subset) -> list[VideoRecord]:
        """The videos of ``split`` with their labels (indices into :attr:`classes`), read from
        its annotations in ``annotation_format``; a ``UsageError`` if there are none."""
        h = self.hparams
        source = self.split_sources[split]
        if source is None:
            raise UsageError(f"no {split}_annotations given, so there is no {split} split")
        videos = read_annotations(
            self._path(source), self.video_root, self.classes, h.annotation_format, split, h.split
        ).videos
        unlabelled = [video for video in videos if video.actions == ()]
        if unlabelled and h.get("videos_without_labels", "keep") == "drop":
            videos = [video for video in videos if video.actions != ()]
            log.info("%s split: left out %d videos without any action", split, len(unlabelled))
        if not videos:
            raise UsageError(
                f"the {split} split has no videos: {split}_annotations {self._path(source)} lists none, "
                "or none of the files it lists exist"
            )
        return videos

    def setup(self, stage: str | None = None) -> None:
        if self.trainer is not None:
            _, world = self._rank_and_world()
            if world > 1 and _lightning_replaces_samplers(self.trainer):
                raise ValueError(
                    f"{type(self).__name__} shards the data itself; create the Trainer with "
                    "use_distributed_sampler=False (Lightning's sampler pads evaluation)"
                )
        h = self.hparams
        if stage in ("fit", None) and "train" not in self.datasets:
            self.datasets["train"] = VideoClipDataset(
                self._every_class_trained(self.split_videos("train")),
                mode="train",
                clip=self.clip,
                decoder=h.decoder,
                clips_per_video=h.clips_per_video,
                short_side=h.train_short_side,
                num_classes=self.num_classes,
                transform=TrainTransform(
                    h.train_crop_size,
                    tuple(h.train_scale),
                    flip=h.train_flip,
                    rand_augment=h.rand_augment,
                    rand_augment_ops=h.rand_augment_ops,
                    rand_augment_magnitude=h.rand_augment_magnitude,
                    random_erasing=h.random_erasing,
                    random_erasing_area=tuple(h.random_erasing_area),
                ),
                mirror=self._flip_mirror(),
            )
        fit_without_val = stage == "fit" and self.split_sources["val"] is None
        if stage in ("fit", "validate", None) and "val" not in self.datasets and not fit_without_val:
            if h.val_views:
                self.datasets["val"] = self._multi_view_tasks(self.split_videos("val"))
            else:
                self.datasets["val"] = VideoClipDataset(
                    self.split_videos("val"),
                    mode="val",
                    clip=self.clip,
                    decoder=h.decoder,
                    short_side=h.val_short_side,
                    num_classes=self.num_classes,
                    transform=EvalTransform(h.val_short_side, h.val_crop_size),
                )
        if stage in ("test", None) and "test" not in self.datasets:
            self.datasets["test"] = self._multi_view_tasks(self.split_videos("test"))

    def _every_class_trained(self, videos: list[VideoRecord]) -> list[VideoRecord]:
        """``videos``, when every class has one: a class without would be an output the model
        never learns (and a class list that does not match the annotations)."""
        labels = {label for video in videos for label in target_classes(video.target)}
        untrained = [name for label, name in enumerate(self.classes) if label not in labels]
        if untrained:
            listed = ", ".join(map(repr, untrained[:5])) + (", ..." if len(untrained) > 5 else "")
            raise UsageError(
                f"{len(untrained)} of {len(self.classes)} classes have no training video in "
                f"{self._path(self.split_sources['train'])}: {listed}; add their videos, or remove them "
                "from the class list"
            )
        return videos

    def _flip_mirror(self) -> dict[int, int]:
        """With ``train_flip``, class -> the class its flipped clips show (``mirrored_classes``),
        said in the log; the classes that say left or right with no mirror are warned about."""
        if not self.hparams.train_flip:
            return {}
        mirror, unpaired = mirrored_classes(self.classes)
        if mirror:
            first = min(mirror)
            log.info(
                "train_flip: mirrored class pairs: %d (e.g. %r <-> %r); a flipped clip of one is "
                "labelled the other",
                len(mirror) // 2,
                self.classes[first],
                self.classes[mirror[first]],
            )
        if unpaired:
            log.warning(
                "train_flip: classes that say left or right, but whose mirror (left and right "
                "exchanged) is no class, keep their label when flipped: %s",
                "; ".join(map(repr, unpaired)),
            )
        return mirror

    @property
    def clip_geometry(self) -> ClipGeometry:
        """The clips of each split this module has, for the model's checks."""
        h, sources = self.hparams, self.split_sources
        return ClipGeometry(
            h.num_frames,
            h.train_crop_size,
            h.val_crop_size if sources["val"] is not None else None,
            h.test_crop_size if sources["test"] is not None else None,
        )

    @property
    def test_views(self) -> EvalViews:
        """The views each test (and predict) video is seen in."""
        return EvalViews.from_datamodule(self.hparams)

    def _multi_view_tasks(self, videos: list[VideoRecord]) -> list[MultiViewTask]:
        """Each video in the test views, with its label and its position in the split."""
        return [MultiViewTask(video.path, self.test_views, video.target, i) for i, video in enumerate(videos)]

    def _dataset(self, split: str) -> Dataset | list[MultiViewTask]:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        return self.datasets[split]

    def _loader(
        self,
        dataset: Dataset,
        sampler: Sampler,
        batch_size: int,
        collate_fn: Callable = collate_videos,
        loader_class: type[DataLoader] = DataLoader,
    ) -> DataLoader:
        workers = self.hparams.num_workers
        return loader_class(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate_fn,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            worker_init_fn=outlive_job_signals if workers > 0 else None,
        )

    def train_dataloader(self) -> StatefulDataLoader:
        dataset = self._dataset("train")
        rank, world = self._rank_and_world()
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank, seed=self.hparams.seed)
        loader = self._loader(dataset, sampler, self.hparams.batch_size, collate_clips, StatefulDataLoader)
        saved, self._saved_state = self._saved_state, {}
        if saved.get("train_loader") is not None:
            workers = saved.get("num_workers")
            if workers is not None and workers != self.hparams.num_workers:
                raise UsageError(
                    f"num_workers is {self.hparams.num_workers}, but the checkpoint's training loader had "
                    f"{workers} workers: resume with --data.init_args.num_workers {workers} (the loader's "
                    "saved state records each worker)"
                )
            loader.load_state_dict(saved["train_loader"])
        self._train_loader = loader
        return loader

    # Lightning saves a StatefulDataLoader's state in checkpoints itself, but restores it only into
    # a loader created after the checkpoint's loop state is restored; reading
    # `trainer.estimated_stepping_batches` in `configure_optimizers` (VideoClassifier's schedule
    # does) creates it before that, and the state is silently dropped
    # (Lightning-AI/pytorch-lightning#20550). Data module state is restored before either. The
    # worker count is saved beside it: the loader's state records each worker, and resumes only
    # with as many (checkpoints from before it was saved are not checked).

    def state_dict(self) -> dict[str, Any]:
        if self._train_loader is None:
            return {}
        return {
            "train_loader": self._train_loader.state_dict(),
            "num_workers": self._train_loader.num_workers,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._saved_state = dict(state_dict)

    def drop_loader_position(self) -> None:
        """Start the training loader from its first batch, whatever the checkpoint said."""
        self._saved_state = {}

    def run_identity(self) -> dict[str, Any]:
        """What the fit trains on and in which order (see ``RunIdentity``, which saves and checks
        it): the data (``data_root``, the annotation and class files, the class list, the training
        videos) and the loader's settings. The data's part is read once per run."""
        h = self.hparams
        if self._data_identity is None:
            sources = [*self.split_sources.values(), h.get("class_names_file")]  # unlabelled: none
            files = {name: self._path(name) for name in sources if name is not None}
            videos = [(video.path, video.actions or video.label) for video in self._dataset("train").videos]
            self._data_identity = {
                "data_root": str(self.root.resolve()),
                "files": {name: file_identity(path) for name, path in files.items() if path.is_file()},
                "classes": list(self.classes),
                "videos": len(videos),
                "video_list": video_list_identity(videos, self.root),
            }
        return {
            **self._data_identity,
            "batch_size": h.batch_size,
            "num_workers": h.num_workers,
            "clips_per_video": h.clips_per_video,
            "world_size": self._rank_and_world()[1],
            "seed": h.seed,
            "seed_everything": global_seed(),
        }

    def _view_loader(self, tasks: list[MultiViewTask]) -> DataLoader:
        """Batches of views, ``test_batch_size`` videos' worth; video i on rank i % world."""
        batch_size = self.hparams.test_batch_size * self.test_views.num_views
        return view_loader(tasks, batch_size, self.hparams.num_workers, *self._rank_and_world())

    def _eval_loader(self, split: str, multi_view: bool) -> DataLoader:
        dataset = self._dataset(split)
        if multi_view:
            return self._view_loader(dataset)
        sampler = ShardSampler(len(dataset), *self._rank_and_world())
        return self._loader(dataset, sampler, self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if self.split_sources["val"] is None:
            return []  # no validation split: Lightning skips validation
        return self._eval_loader("val", self.hparams.val_views)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test", True)

    def predict_dataloader(self) -> DataLoader:
        """The test split's videos for ``lightning predict``, as ``videoswinv2 predict`` reads them
        (batches of views; ``test_batch_size`` videos' worth per batch). Results are written by a
        ``videoswinv2.inference.PredictionWriter`` in the trainer's callbacks."""
        return self._view_loader(
            multi_view_tasks([video.path for video in self.split_videos("test")], self.test_views)
        )


def _lightning_replaces_samplers(trainer: pl.Trainer) -> bool:
    """Whether the Trainer was created with ``use_distributed_sampler=True``, which would wrap the
    evaluation samplers in Lightning's padding ``DistributedSampler``. Lightning 2.6 keeps the
    flag only on its private accelerator connector; no public attribute holds it."""
    return getattr(getattr(trainer, "_accelerator_connector", None), "use_distributed_sampler", False)


# Every config names the module by its first name.
KineticsDataModule = VideoDataModule


def _classifiable(classes: list[str], source: Path) -> list[str]:
    """``classes``, when a classifier can be trained on them (the head needs at least two)."""
    if len(classes) < 2:
        raise UsageError(f"{source}: {len(classes)} class {classes}: a classifier needs at least 2 classes")
    return classes
