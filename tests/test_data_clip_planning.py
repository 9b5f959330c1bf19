"""Clip planning: which frame indices make the train, val and test clips."""

import pytest
import torch

from videoswinv2.data import ClipSpec, center_clip, spread_clips, train_clip, train_clips


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
