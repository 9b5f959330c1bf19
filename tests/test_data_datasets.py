"""Datasets and collate: sample layout, multi-view order, broken videos skipped and counted."""

import pytest
import torch
from einops import rearrange
from torch.utils.data import DataLoader

import videoswinv2.data.datasets as datasets
from videoswinv2.data import (
    ClipSpec,
    EvalTransform,
    TrainTransform,
    VideoClipDataset,
    VideoRecord,
    collate_clips,
    collate_videos,
    load_views,
    open_video,
    spread_clips,
    train_clips,
)
from videoswinv2.data.annotations import Action
from videoswinv2.data.view_stream import multi_view_tasks, view_clips, view_loader
from videoswinv2.errors import WorkFailed
from videoswinv2.record import INPUT_MEAN, INPUT_STD, EvalViews

DECODERS = ["pyav", "decord", "torchcodec"]


def _pixels(video: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation: ``(..., C, T, H, W)`` float -> ``(..., T, H, W, C)`` 0..255."""
    mean = torch.tensor(INPUT_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(INPUT_STD).view(3, 1, 1, 1)
    return rearrange(video * std + mean, "... c t h w -> ... t h w c").round().clamp(0, 255)


@pytest.mark.parametrize("decoder", DECODERS)
def test_train_and_val_samples(decoder, data_numbered_video) -> None:
    videos = [VideoRecord(str(data_numbered_video), 3)]
    spec = ClipSpec(num_frames=8, frame_interval=2)
    train = VideoClipDataset(videos, mode="train", transform=TrainTransform(48), clip=spec, decoder=decoder)
    val = VideoClipDataset(videos, mode="val", transform=EvalTransform(64, 48), clip=spec, decoder=decoder)
    (clip,) = train[0]["video"]  # training samples hold a list of clips_per_video clips
    for sample, video, label in ((train[0], clip, [3]), (val[0], val[0]["video"], 3)):
        assert video.shape == (3, 8, 48, 48) and video.dtype == torch.float32
        assert (sample["label"], sample["index"], sample["broken"]) == (label, 0, [])


@pytest.mark.parametrize("decoder", DECODERS)
def test_clips_per_video_cuts_independent_clips_from_one_decode(
    decoder, data_numbered_video, data_frame_numbers, monkeypatch
) -> None:
    spec, k = ClipSpec(num_frames=6, frame_interval=2), 4
    reads = []  # every read() of the dataset's readers

    def open_and_count(*args, **kwargs):
        reader = open_video(*args, **kwargs)
        read = reader.read
        reader.read = lambda indices: reads.append(list(indices)) or read(indices)
        return reader

    monkeypatch.setattr(datasets, "open_video", open_and_count)
    # The transform keeps the frames as decoded (so their numbers can be read) but flips each
    # clip at random, as the real one does: the clips must not share one draw.
    flips = []

    def transform(frames: torch.Tensor) -> torch.Tensor:
        flips.append(bool(torch.rand(()) < 0.5))
        return frames.flip(2) if flips[-1] else frames

    dataset = VideoClipDataset(
        [VideoRecord(str(data_numbered_video), 0)],
        mode="train",
        transform=transform,
        clip=spec,
        decoder=decoder,
        clips_per_video=k,
    )
    torch.manual_seed(3)
    sample = dataset[0]
    torch.manual_seed(3)
    plans = train_clips(90, 30.0, spec, k)
    assert len(reads) == 1 and reads[0] == sorted({i for plan in plans for i in plan})  # one decode
    assert len({plan[0] for plan in plans}) == k  # the seed gives k different starts
    assert len(sample["video"]) == k and all(clip.shape == (6, 64, 120, 3) for clip in sample["video"])
    for clip, plan, flipped in zip(sample["video"], plans, flips, strict=True):
        assert data_frame_numbers(clip.flip(2) if flipped else clip) == plan
    assert len(set(flips)) == 2  # seed 3 flips some clips and not others
    batch = collate_clips([sample, {**sample, "label": [5] * k, "index": 1}])
    assert batch["video"].shape == (2 * k, 6, 64, 120, 3)
    assert batch["label"].tolist() == [0] * k + [5] * k and batch["index"].tolist() == [0] * k + [1] * k


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("rotation", [0, -90])
def test_multi_view_order_is_clip_major(
    decoder, rotation, data_numbered_video, data_make_numbered_video, data_frame_numbers, tmp_path
) -> None:
    # The numbered frames are 64x120: short side 64 keeps them at full size, so each view must
    # equal a 64 px window (left 0, centre 28, right 56) of its clip's decoded frames. A phone
    # video stores them as 120x64 with a display rotation: its views must be the same windows
    # of the upright frames, not top/centre/bottom of the stored ones.
    if rotation:
        data_numbered_video = data_make_numbered_video(tmp_path / "phone.mp4", 90, rotation=rotation)
    views = load_views(
        EvalViews(num_clips=3, num_frames=4, frame_interval=3, short_side=64, crop_size=64, decoder=decoder),
        str(data_numbered_video),
    )
    assert views.shape == (9, 3, 4, 64, 64)
    clips = spread_clips(90, 30.0, ClipSpec(4, 3), 3)
    assert [clip[0] for clip in clips] == [0, 40, 80]
    with open_video(str(data_numbered_video), decoder) as reader:
        for view, pixels in enumerate(_pixels(views)):
            frames = reader.read(clips[view // 3])
            left = (0, 28, 56)[view % 3]
            assert torch.equal(pixels, frames[:, :, left : left + 64].float()), view
            assert data_frame_numbers(frames) == clips[view // 3]


@pytest.mark.parametrize("decoder", DECODERS)
def test_broken_training_videos_are_replaced_and_reported(
    decoder, data_numbered_video, data_broken_videos
) -> None:
    good = VideoRecord(str(data_numbered_video), 0)
    broken = [VideoRecord(str(path), 1) for path in data_broken_videos.values()]
    dataset = VideoClipDataset(
        [good, *broken],
        mode="train",
        transform=TrainTransform(32),
        clip=ClipSpec(4, 2),
        decoder=decoder,
    )
    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size=3, collate_fn=collate_clips)
    reported = []
    for batch in loader:  # a whole epoch: 6 samples, 5 of them broken files
        assert batch["video"].shape == (3, 3, 4, 32, 32)
        assert torch.equal(batch["label"], torch.zeros(3, dtype=torch.long))  # all replaced by the good one
        assert torch.equal(batch["index"], torch.zeros(3, dtype=torch.long))
        reported += batch["broken"]
    assert set(reported) == {v.path for v in broken}


def test_training_stops_with_a_clear_error_when_nothing_decodes(data_broken_videos) -> None:
    videos = [VideoRecord(str(path), 0) for path in data_broken_videos.values()]
    dataset = VideoClipDataset(videos, mode="train", transform=TrainTransform(32), max_replacements=10)
    with pytest.raises(
        WorkFailed, match=r"11 videos in a row failed to decode \([1-5] distinct files, e\.g\. "
    ):
        dataset[0]


def test_broken_evaluation_videos_are_dropped_from_batches(data_numbered_video, data_broken_videos) -> None:
    good = VideoRecord(str(data_numbered_video), 2)
    videos = [
        VideoRecord(str(data_broken_videos["truncated"]), 0),
        good,
        VideoRecord(str(data_broken_videos["text"]), 1),
    ]
    dataset = VideoClipDataset(videos, mode="val", transform=EvalTransform(32, 32), clip=ClipSpec(4, 2))
    assert dataset[0]["video"] is None and dataset[0]["broken"] == [videos[0].path]
    batches = list(DataLoader(dataset, batch_size=2, collate_fn=collate_videos))
    assert [b["index"].tolist() for b in batches] == [[1], []]
    assert batches[0]["label"].tolist() == [2]
    assert batches[0]["video"].shape[0] == 1
    assert batches[0]["broken"] == [videos[0].path] and batches[1]["broken"] == [videos[2].path]
    assert batches[1]["video"].shape == (0,) and batches[1]["label"].shape == (0,)


def test_dataset_arguments_are_checked(data_numbered_video) -> None:
    videos = [VideoRecord(str(data_numbered_video), 0)]
    with pytest.raises(ValueError, match="mode must be"):
        VideoClipDataset(videos, mode="test", transform=EvalTransform())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clips_per_video"):
        VideoClipDataset(videos, mode="val", transform=EvalTransform(), clips_per_video=2)
    with pytest.raises(ValueError, match="at least one video"):
        VideoClipDataset([], mode="val", transform=EvalTransform())


def test_segment_sampling_on_a_numbered_webm(data_make_numbered_video, data_frame_numbers, tmp_path) -> None:
    # Something-Something V2's videos: VP9 WebM at 12 fps, a few seconds long.
    path = data_make_numbered_video(tmp_path / "78687.webm", 45, fps=12)
    spec = ClipSpec(num_frames=8, frame_interval=2, sampling="segments")
    videos = [VideoRecord(str(path), 0)]
    bounds = [(round(44 / 8 * i), round(44 / 8 * (i + 1))) for i in range(8)]
    train = VideoClipDataset(videos, mode="train", transform=lambda frames: frames, clip=spec)
    picked = set()
    for seed in range(6):
        torch.manual_seed(seed)
        numbers = data_frame_numbers(train[0]["video"][0])
        assert all(first <= n <= last for n, (first, last) in zip(numbers, bounds, strict=True))
        picked.add(tuple(numbers))
    assert len(picked) > 1  # one random frame per segment, a new draw each time
    val = VideoClipDataset(videos, mode="val", transform=lambda frames: frames, clip=spec)
    centres = [(first + last) // 2 for first, last in bounds]
    assert data_frame_numbers(val[0]["video"]) == centres
    views = EvalViews(num_clips=1, num_frames=8, sampling="segments", short_side=64, crop_size=64)
    [clip] = view_clips(views, str(path))
    assert data_frame_numbers(clip.permute(0, 2, 3, 1)) == centres  # the test views too
    assert load_views(views, str(path)).shape == (3, 3, 8, 64, 64)


def test_test_views_place_clips_and_loop_as_configured(data_numbered_video, data_frame_numbers) -> None:
    # 90 frames; clips of 40 x 2 frames (span 79, mmaction length 80): (90 - 80 + 1) / 2 = 5.5
    # per part, so mmaction's two clips start at int(2.75) = 2 and int(8.25) = 8.
    def numbers(**settings) -> list[list[int]]:
        views = EvalViews(**{"num_clips": 2, "num_frames": 40, "short_side": 64, "crop_size": 64, **settings})
        clips = view_clips(views, str(data_numbered_video))  # each (T, C, 64, 120) uint8
        return [data_frame_numbers(clip.permute(0, 2, 3, 1)) for clip in clips]

    assert numbers() == [list(range(0, 80, 2)), list(range(11, 90, 2))]  # first to last start (90 - 79)
    assert numbers(clip_placement="segment_centres") == [list(range(2, 82, 2)), list(range(8, 88, 2))]
    # 60 x 2 frames are longer than the video: past its end, frames repeat the last or loop.
    long = dict(num_frames=60, clip_placement="segment_centres")
    assert numbers(**long)[0] == [min(i, 89) for i in range(0, 120, 2)]
    assert numbers(**long, short_video="loop")[0] == [i % 90 for i in range(0, 120, 2)]


@pytest.mark.parametrize("decoder", DECODERS)
def test_frames_resized_while_decoding_feed_the_same_transforms(decoder, data_sample_videos) -> None:
    # The validation transform resizes to 128 first: frames the reader resized to 128 skip that
    # step (torchvision's resize returns a frame of the asked size as it is) and give the same
    # clip, within the resize kernel's rounding for torchcodec, exactly for the others.
    videos = [VideoRecord(str(data_sample_videos["bikes"]), 0)]
    spec = ClipSpec(num_frames=4, frame_interval=2)

    def val(short_side):
        dataset = VideoClipDataset(
            videos,
            mode="val",
            transform=EvalTransform(128, 112),
            clip=spec,
            decoder=decoder,
            short_side=short_side,
        )
        return _pixels(dataset[0]["video"])

    difference = (val(128) - val(None)).abs()
    assert difference.mean() < (0.5 if decoder == "torchcodec" else 1e-6)
    train = VideoClipDataset(
        videos, mode="train", transform=TrainTransform(112), clip=spec, decoder=decoder, short_side=128
    )
    assert train[0]["video"][0].shape == (3, 4, 112, 112)


@pytest.mark.torchcodec
def test_views_decoded_on_a_gpu_are_read_in_the_main_process(data_numbered_video) -> None:
    views = EvalViews(num_clips=1, num_frames=4, short_side=64, crop_size=64, decoder="torchcodec")
    cpu = view_loader(multi_view_tasks([str(data_numbered_video)], views), 3, num_workers=2)
    gpu = view_loader(multi_view_tasks([str(data_numbered_video)], views, "cuda"), 3, num_workers=2)
    assert cpu.num_workers == 2 and (gpu.num_workers, gpu.pin_memory) == (0, False)


def test_a_multi_label_training_clip_is_labelled_by_the_actions_over_its_frames(
    data_numbered_video, data_frame_numbers
) -> None:
    # 90 frames at 30 fps; actions that some clips overlap and others miss, one past the end.
    actions = (
        Action(0, 0.0, 0.5),  # frames 0-14
        Action(1, 1.0, 1.2),  # frames 30-35
        Action(2, 2.0, 3.0),  # frames 60-89
        Action(3, 1.19, 1.21),  # inside frame 35 only
        Action(1, 5.0, 6.0),  # after the video
    )
    video = VideoRecord(str(data_numbered_video), actions=actions)
    dataset = VideoClipDataset(
        [video], mode="train", transform=lambda f: f, clip=ClipSpec(4, 3), clips_per_video=40, num_classes=5
    )
    torch.manual_seed(0)
    sample = dataset[0]
    seen = set()
    for clip, label in zip(sample["video"], sample["label"], strict=True):
        frames = data_frame_numbers(clip)
        # Frame f shows [f/30, (f+1)/30): an action overlapping any frame from first to last.
        expected = {
            a.label
            for a in actions
            for f in range(frames[0], frames[-1] + 1)
            if a.start_s < (f + 1) / 30 and a.end_s > f / 30
        }
        assert label.tolist() == [float(c in expected) for c in range(5)]
        seen.add(tuple(sorted(expected)))
    assert len(seen) >= 4  # clips with different label sets, the empty one among them
    assert () in seen and any(3 in labels for labels in seen)
    val = VideoClipDataset([video], mode="val", transform=lambda f: f, clip=ClipSpec(4, 3), num_classes=5)
    assert val[0]["label"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]  # all the video's actions
    batch = collate_clips([sample])
    assert batch["label"].shape == (40, 5) and batch["label"].dtype == torch.float32


def test_a_flipped_clip_takes_the_mirror_class(data_numbered_video) -> None:
    transform = TrainTransform(32)
    flips = []
    apply = transform.apply
    transform.apply = lambda frames: (result := apply(frames), flips.append(result[1]))[0]
    for target, mirror, mirrored in ((0, {0: 1, 1: 0}, 1), (2, {0: 1, 1: 0}, 2)):
        dataset = VideoClipDataset(
            [VideoRecord(str(data_numbered_video), target)],
            mode="train",
            transform=transform,
            clip=ClipSpec(2, 2),
            clips_per_video=8,
            mirror=mirror,
        )
        flips.clear()
        labels = dataset[0]["label"]
        assert labels == [mirrored if flipped else target for flipped in flips] and len(set(flips)) == 2
    multi = VideoRecord(str(data_numbered_video), actions=(Action(0), Action(2)))
    dataset = VideoClipDataset(
        [multi],
        mode="train",
        transform=transform,
        clip=ClipSpec(2, 2),
        clips_per_video=8,
        mirror={0: 1, 1: 0},
        num_classes=3,
    )
    flips.clear()
    labels = [label.tolist() for label in dataset[0]["label"]]
    assert labels == [[0.0, 1.0, 1.0] if flipped else [1.0, 0.0, 1.0] for flipped in flips]


def test_train_transform_says_whether_it_flipped() -> None:
    frames = torch.arange(2 * 8 * 8 * 3, dtype=torch.uint8).view(2, 8, 8, 3)
    transform = TrainTransform(8, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    flips = []
    for seed in range(8):
        torch.manual_seed(seed)
        clip, flipped = transform.apply(frames)
        torch.manual_seed(seed)
        assert torch.equal(transform(frames), clip)
        unflipped = TrainTransform(8, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)(frames)
        assert torch.equal(clip, unflipped.flip(-1) if flipped else unflipped)
        flips.append(flipped)
    assert len(set(flips)) == 2
