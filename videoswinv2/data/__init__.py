"""Video data: annotations (Kinetics, UCF101, HMDB51, Something-Something V2, class folders),
clip planning, decoding, transforms, datasets, the Lightning DataModule and a synthetic motion
dataset."""

from videoswinv2.data.annotation_formats import (
    ANNOTATION_FORMATS,
    SSV2_MIRRORED_CLASSES,
    dataset_classes,
    detect_format,
    read_annotations,
    read_hmdb51,
    read_ssv2,
    read_ucf101,
)
from videoswinv2.data.annotations import (
    Annotations,
    VideoRecord,
    read_class_folders,
    read_class_names,
    read_kinetics_csv,
    read_list_file,
)
from videoswinv2.data.broken_videos import BrokenVideoLogger
from videoswinv2.data.clip_planning import (
    ClipSpec,
    center_clip,
    center_segment_clip,
    evaluation_clips,
    random_segment_clip,
    segment_centred_clips,
    spread_clips,
    train_clip,
    train_clips,
)
from videoswinv2.data.datamodule import KineticsDataModule, ShardSampler
from videoswinv2.data.datasets import (
    VideoClipDataset,
    collate_clips,
    collate_videos,
)
from videoswinv2.data.decoding import DecoderName, VideoDecodeError, VideoReader, open_video
from videoswinv2.data.sampling import ResumableSampler, SampleKey
from videoswinv2.data.synthetic import (
    SYNTHETIC_CLASSES,
    SyntheticSpec,
    make_synthetic_dataset,
)
from videoswinv2.data.transforms import (
    EvalTransform,
    TrainTransform,
    normalize,
)
from videoswinv2.data.unlabelled import UnlabelledVideoDataModule, unlabelled_videos
from videoswinv2.data.views import load_views

__all__ = [
    "ANNOTATION_FORMATS",
    "SSV2_MIRRORED_CLASSES",
    "SYNTHETIC_CLASSES",
    "Annotations",
    "BrokenVideoLogger",
    "ClipSpec",
    "DecoderName",
    "EvalTransform",
    "load_views",
    "KineticsDataModule",
    "ResumableSampler",
    "SampleKey",
    "ShardSampler",
    "SyntheticSpec",
    "TrainTransform",
    "UnlabelledVideoDataModule",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoReader",
    "VideoRecord",
    "center_clip",
    "center_segment_clip",
    "collate_clips",
    "collate_videos",
    "dataset_classes",
    "detect_format",
    "evaluation_clips",
    "make_synthetic_dataset",
    "normalize",
    "open_video",
    "random_segment_clip",
    "read_annotations",
    "read_class_folders",
    "read_class_names",
    "read_hmdb51",
    "read_kinetics_csv",
    "read_list_file",
    "read_ssv2",
    "read_ucf101",
    "segment_centred_clips",
    "spread_clips",
    "train_clip",
    "train_clips",
    "unlabelled_videos",
]
