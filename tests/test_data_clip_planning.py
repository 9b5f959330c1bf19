"""Clip planning: which frame indices make the train, val and test clips and the timeline windows."""

import numpy as np
import pytest
import torch

from videoswinv2.data import (
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
from videoswinv2.data.clip_planning import plan_windows


def test_offsets_and_span() -> None:
    spec = ClipSpec(num_frames=4, frame_interval=3)
    assert spec.offsets(fps=30) == [0, 3, 6, 9]
    assert spec.span(fps=30) == 10


def test_target_fps_scales_the_interval_to_the_video_rate() -> None:
    spec = ClipSpec(num_frames=4, frame_interval=2, target_fps=30)
    assert spec.offsets(fps=30) == [0, 2, 4, 6]
    assert spec.offsets(fps=60) == [0, 4, 8, 12]
    assert spec.offsets(fps=25) == [0, 2, 3, 5]  # 5/3 frames per step, rounded per frame
    with pytest.raises(ValueError, match="frame rate"):
        spec.offsets(fps=0)


@pytest.mark.parametrize("kwargs", [{"num_frames": 0}, {"frame_interval": 0}, {"target_fps": -1}])
def test_invalid_spec(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ClipSpec(**kwargs)


def test_train_clip_reaches_every_start_and_no_further() -> None:
    spec = ClipSpec(num_frames=4, frame_interval=2)  # span 7
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(400):
        clip = train_clip(20, 30.0, spec, generator)
        assert clip == list(range(clip[0], clip[0] + 7, 2))
        starts.add(clip[0])
    assert starts == set(range(14))  # 0 .. 20 - 7


def test_train_clip_is_reproducible_with_a_generator() -> None:
    spec = ClipSpec(8, 2)
    first = [train_clip(300, 30.0, spec, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert first[0] == first[1]


def test_center_clip() -> None:
    spec = ClipSpec(num_frames=4, frame_interval=2)
    assert center_clip(20, 30.0, spec) == [6, 8, 10, 12]  # start (20 - 7) // 2
    assert center_clip(7, 30.0, spec) == [0, 2, 4, 6]


def test_test_clips_run_from_the_first_to_the_last_start() -> None:
    spec = ClipSpec(num_frames=4, frame_interval=2)  # span 7, last start 93 in 100 frames
    clips = spread_clips(100, 30.0, spec, num_clips=4)
    assert [clip[0] for clip in clips] == [0, 31, 62, 93]
    assert clips[-1][-1] == 99
    assert all(clip == list(range(clip[0], clip[0] + 7, 2)) for clip in clips)


def test_single_test_clip_is_the_centre_clip() -> None:
    spec = ClipSpec(8, 2)
    assert spread_clips(100, 30.0, spec, num_clips=1) == [center_clip(100, 30.0, spec)]


def test_short_videos_repeat_their_last_frame() -> None:
    spec = ClipSpec(num_frames=6, frame_interval=2)  # span 11 > 5 frames
    expected = [0, 2, 4, 4, 4, 4]
    assert train_clip(5, 30.0, spec) == expected
    assert center_clip(5, 30.0, spec) == expected
    assert spread_clips(5, 30.0, spec, num_clips=3) == [expected] * 3
    assert center_clip(1, 30.0, spec) == [0] * 6


def test_bad_inputs() -> None:
    spec = ClipSpec(8, 2)
    with pytest.raises(ValueError, match="at least one frame"):
        center_clip(0, 30.0, spec)
    with pytest.raises(ValueError, match="num_clips"):
        spread_clips(100, 30.0, spec, num_clips=0)


def test_clips_of_one_decode_share_a_phase_and_cover_every_start() -> None:
    spec = ClipSpec(num_frames=4, frame_interval=3)  # span 10
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(300):
        clips = train_clips(30, 30.0, spec, 3, generator)
        assert all(clip == list(range(clip[0], clip[0] + 10, 3)) for clip in clips)
        assert len({clip[0] % 3 for clip in clips}) == 1  # one phase: the clips are slices of one grid
        starts |= {clip[0] for clip in clips}
    assert starts == set(range(21))  # every start 0..20 occurs
    # A fractional interval (target_fps) has no common grid: independent clips of the same shape.
    uneven = ClipSpec(num_frames=4, frame_interval=2, target_fps=30)
    offsets = uneven.offsets(25.0)
    assert offsets == [0, 2, 3, 5]
    for clip in train_clips(60, 25.0, uneven, 3, generator):
        assert clip == [clip[0] + offset for offset in offsets]


# -- segment sampling (Video Swin's frame_uniform, for Something-Something V2) ---------------------


def _segment_bounds(total: int, num_frames: int) -> list[tuple[int, int]]:
    """Video Swin's get_seq_frames: segment i runs from round(s * i) to round(s * (i + 1)),
    s = (total - 1) / num_frames, NumPy rounding half to even."""
    size = (total - 1) / num_frames
    return [(int(np.round(size * i)), int(np.round(size * (i + 1)))) for i in range(num_frames)]


@pytest.mark.parametrize(("total", "num_frames"), [(48, 16), (100, 32), (37, 8), (9, 4), (5, 8), (1, 4)])
def test_segment_sampling_picks_one_frame_per_segment(total: int, num_frames: int) -> None:
    bounds = _segment_bounds(total, num_frames)
    assert center_segment_clip(total, num_frames) == [(a + b) // 2 for a, b in bounds]
    generator = torch.Generator().manual_seed(0)
    seen: list[set[int]] = [set() for _ in bounds]
    for _ in range(200):
        clip = random_segment_clip(total, num_frames, generator)
        assert len(clip) == num_frames
        for frames, frame, (first, last) in zip(seen, clip, bounds, strict=True):
            assert first <= frame <= last
            frames.add(frame)
    assert seen == [set(range(a, b + 1)) for a, b in bounds]  # every frame of each segment occurs
    assert 0 in seen[0] and total - 1 in seen[-1]  # the whole video is covered


def test_segment_sampling_through_the_clip_spec() -> None:
    spec = ClipSpec(num_frames=8, frame_interval=2, sampling="segments")  # the interval does not apply
    assert center_clip(100, 30.0, spec) == center_segment_clip(100, 8)
    assert evaluation_clips(100, 30.0, spec, 1) == [center_segment_clip(100, 8)]
    draws = [train_clip(100, 30.0, spec, torch.Generator().manual_seed(5)) for _ in range(2)]
    assert draws[0] == draws[1] == random_segment_clip(100, 8, torch.Generator().manual_seed(5))
    clips = train_clips(100, 30.0, spec, 3, torch.Generator().manual_seed(1))
    assert len(clips) == 3 and len({tuple(clip) for clip in clips}) == 3  # independent draws
    with pytest.raises(ValueError, match="set it to 1"):
        evaluation_clips(100, 30.0, spec, 2)
    with pytest.raises(ValueError, match="sampling must be one of"):
        ClipSpec(sampling="uniform")


# -- test clip placement and short videos ----------------------------------------------------------


def _mmaction_test_starts(total: int, clip_len: int, frame_interval: int, num_clips: int) -> list[int]:
    """mmaction 0.x SampleFrames._get_test_clips, as Video Swin ran it."""
    ori_clip_len = clip_len * frame_interval
    avg_interval = (total - ori_clip_len + 1) / float(num_clips)
    if total > ori_clip_len - 1:
        base_offsets = np.arange(num_clips) * avg_interval
        return (base_offsets + avg_interval / 2.0).astype(np.int64).tolist()
    return [0] * num_clips


@pytest.mark.parametrize(("total", "num_clips"), [(300, 4), (250, 4), (100, 3), (64, 4), (65, 2), (63, 4)])
def test_segment_centred_test_clips_follow_mmaction(total: int, num_clips: int) -> None:
    spec = ClipSpec(num_frames=32, frame_interval=2)
    clips = segment_centred_clips(total, 30.0, spec, num_clips)
    starts = _mmaction_test_starts(total, 32, 2, num_clips)
    assert [clip[0] for clip in clips] == starts
    assert all(clip == [min(s + 2 * i, total - 1) for i in range(32)] for clip, s in zip(clips, starts))
    assert evaluation_clips(total, 30.0, spec, num_clips, "segment_centres") == clips


def test_the_two_placements_differ_as_documented() -> None:
    spec = ClipSpec(num_frames=32, frame_interval=2)  # L = 64 for mmaction, span 63
    # 300 frames, 4 clips: uniform runs from 0 to the last start 237; mmaction's centres of
    # (300 - 64 + 1) / 4 = 59.25-frame parts start at 29, 88, 148, 207.
    assert [c[0] for c in evaluation_clips(300, 30.0, spec, 4)] == [0, 79, 158, 237]
    assert [c[0] for c in evaluation_clips(300, 30.0, spec, 4, "segment_centres")] == [29, 88, 148, 207]
    with pytest.raises(ValueError, match="placement must be one of"):
        evaluation_clips(300, 30.0, spec, 4, "centres")


def test_short_videos_loop_when_asked() -> None:
    spec = ClipSpec(num_frames=6, frame_interval=2, short_video="loop")  # span 11 > 5 frames
    expected = [0, 2, 4, 1, 3, 0]  # mmaction's np.mod(frame_inds, total_frames)
    assert train_clip(5, 30.0, spec) == expected
    assert center_clip(5, 30.0, spec) == expected
    assert spread_clips(5, 30.0, spec, num_clips=3) == [expected] * 3
    assert segment_centred_clips(5, 30.0, spec, num_clips=2) == [expected] * 2
    assert train_clips(5, 30.0, spec, 2) == [expected] * 2
    assert center_clip(1, 30.0, spec) == [0] * 6
    long_enough = ClipSpec(num_frames=6, frame_interval=2, short_video="loop")
    assert center_clip(20, 30.0, long_enough) == center_clip(20, 30.0, ClipSpec(6, 2))  # no change
    with pytest.raises(ValueError, match="short_video must be one of"):
        ClipSpec(short_video="wrap")


WINDOW_CLIP = ClipSpec(num_frames=4, frame_interval=3)  # a span of 10 frames


def test_timeline_windows_start_every_stride_and_the_last_one_ends_on_the_last_frame():
    windows = plan_windows(103, 10.0, WINDOW_CLIP, stride_s=0.5)  # stride 5 frames
    assert [w[0] for w in windows] == [*range(0, 95, 5), 93]  # 93: the tail after the window at 90
    assert all(w == list(range(w[0], w[0] + 10, 3)) for w in windows)
    assert [w[0] for w in plan_windows(100, 10.0, WINDOW_CLIP, 0.5)][
        -1
    ] == 90  # ends on the last frame: no extra
    assert plan_windows(100, 10.0, WINDOW_CLIP, 3.0) == [[s, s + 3, s + 6, s + 9] for s in (0, 30, 60, 90)]
    assert plan_windows(5, 10.0, WINDOW_CLIP, 0.5) == [
        [0, 3, 4, 4]
    ]  # shorter than a window: last frame repeated
    assert plan_windows(103, 7.5, WINDOW_CLIP, 0.5)[1][0] == 4  # floor(3.75 + 0.5)
    with pytest.raises(ValueError, match="shorter than one frame"):
        plan_windows(100, 10.0, WINDOW_CLIP, 0.05)
    with pytest.raises(ValueError, match="frame rate is unknown"):
        plan_windows(100, 0.0, WINDOW_CLIP, 1.0)
