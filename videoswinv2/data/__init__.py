"""Kinetics-style video data: annotations, clip planning, decoding, transforms, datasets,
the Lightning DataModule and a synthetic motion dataset."""

from videoswinv2.data.annotations import (
    Annotations,
    VideoRecord,
    kinetics400_classes,
    read_annotations,
    read_class_folders,
    read_class_names,
    read_kinetics_csv,
    read_list_file,
)
from videoswinv2.data.broken_videos import BrokenVideoLogger
from videoswinv2.data.clip_planning import ClipSpec, center_clip, spread_clips, train_clip, train_clips
from videoswinv2.data.datamodule import KineticsDataModule, ShardSampler
from videoswinv2.data.datasets import (
    MultiViewDataset,
    VideoClipDataset,
    collate_clips,
    collate_videos,
)
from videoswinv2.data.decoding import DecoderName, VideoDecodeError, VideoReader, open_video
from videoswinv2.data.synthetic import (
    SYNTHETIC_CLASSES,
    SyntheticSpec,
    make_synthetic_dataset,
)
from videoswinv2.data.transforms import (
    VIDEO_SWIN_MEAN,
    VIDEO_SWIN_STD,
    EvalTransform,
    TrainTransform,
    normalize,
)
from videoswinv2.data.unlabelled import UnlabelledVideoDataModule, unlabelled_videos
from videoswinv2.data.views import EvalViews

__all__ = [
    "SYNTHETIC_CLASSES",
    "VIDEO_SWIN_MEAN",
    "VIDEO_SWIN_STD",
    "Annotations",
    "BrokenVideoLogger",
    "ClipSpec",
    "DecoderName",
    "EvalTransform",
    "EvalViews",
    "KineticsDataModule",
    "MultiViewDataset",
    "ShardSampler",
    "SyntheticSpec",
    "TrainTransform",
    "UnlabelledVideoDataModule",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoReader",
    "VideoRecord",
    "center_clip",
    "collate_clips",
    "collate_videos",
    "kinetics400_classes",
    "make_synthetic_dataset",
    "normalize",
    "open_video",
    "read_annotations",
    "read_class_folders",
    "read_class_names",
    "read_kinetics_csv",
    "read_list_file",
    "spread_clips",
    "train_clip",
    "train_clips",
    "unlabelled_videos",
]
