"""Transforms: shapes, normalisation values, crop positions, per-clip consistency."""

import pytest
import torch

from videoswinv2.data import (
    EvalTransform,
    TrainTransform,
    normalize,
)
from videoswinv2.data.transforms import resize_short_side, three_crop_views, three_crop_windows
from videoswinv2.record import INPUT_MEAN, INPUT_STD


def _columns(t: int, h: int, w: int) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 whose pixel value is its column index (mod 256)."""
    row = (torch.arange(w) % 256).to(torch.uint8)
    return row.view(1, 1, w, 1).expand(t, h, w, 3).contiguous()


def test_normalize_values_and_layout() -> None:
    clip = torch.zeros(2, 3, 4, 5, dtype=torch.uint8)  # (T, C, H, W)
    clip[1, 0] = 255
    out = normalize(clip)
    assert out.shape == (3, 2, 4, 5) and out.dtype == torch.float32  # (C, T, H, W)
    for c in range(3):
        assert out[c, 0].unique().item() == pytest.approx(-INPUT_MEAN[c] / INPUT_STD[c])
    assert out[0, 1].unique().item() == pytest.approx((255 - INPUT_MEAN[0]) / INPUT_STD[0])


def test_train_transform_output_and_same_crop_on_every_frame() -> None:
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (1, 96, 128, 3), dtype=torch.uint8).expand(6, -1, -1, -1).contiguous()
    transform = TrainTransform(crop_size=48)
    for _ in range(5):
        out = transform(frames)
        assert out.shape == (3, 6, 48, 48) and out.dtype == torch.float32
        assert torch.equal(out[:, :1].expand_as(out), out)  # identical frames stay identical


@pytest.mark.parametrize(("flip", "low", "high"), [(True, 60, 140), (False, 0, 0)])
def test_train_transform_flips_half_the_time(flip: bool, low: int, high: int) -> None:
    torch.manual_seed(0)
    frames = _columns(2, 32, 32)  # brightness grows to the right
    transform = TrainTransform(crop_size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=flip)
    flipped = 0
    for _ in range(200):
        out = transform(frames)
        flipped += bool(out[0, 0, 0, 0] > out[0, 0, 0, -1])
    assert low <= flipped <= high


def test_rand_augment_runs_on_clips() -> None:
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (4, 40, 40, 3), dtype=torch.uint8)
    out = TrainTransform(crop_size=32, rand_augment=True, rand_augment_magnitude=9)(frames)
    assert out.shape == (3, 4, 32, 32)


def test_eval_transform_resizes_the_short_side_and_crops_the_centre() -> None:
    frames = _columns(3, 128, 256)  # short side 128 -> 64, width 256 -> 128
    out = EvalTransform(short_side=64, crop_size=32)(frames)
    assert out.shape == (3, 3, 32, 32)
    # Centre crop of a 128-wide resized frame: columns 48..79, i.e. source columns ~96..159.
    first_pixel = out[0, 0, 0, 0] * INPUT_STD[0] + INPUT_MEAN[0]
    assert 94 <= first_pixel <= 99


@pytest.mark.parametrize(("height", "width"), [(32, 80), (80, 32), (40, 60)])
def test_three_crop_windows(height: int, width: int) -> None:
    long_side, short_side = max(height, width), min(height, width)
    alongs = [0, (long_side - 32) // 2, long_side - 32]  # start, centre, end of the long side
    across = (short_side - 32) // 2  # the short side is centre-cropped
    expected = [(a, across) if height > width else (across, a) for a in alongs]
    assert three_crop_windows(height, width, 32) == expected
    with pytest.raises(ValueError, match="smaller than the 48 px crop"):
        three_crop_windows(height, width, 48)


def test_three_crop_views_are_the_clips_three_crops_normalised() -> None:
    clip = torch.randint(0, 256, (3, 3, 32, 48), dtype=torch.uint8)  # (T, C, H, W)
    views = three_crop_views(clip, 32)
    assert views.shape == (3, 3, 3, 32, 32)
    for view, left in enumerate((0, 8, 16)):
        assert torch.allclose(views[view], normalize(clip[..., left : left + 32]))


def test_resize_short_side_keeps_aspect() -> None:
    out = resize_short_side(torch.zeros(2, 90, 160, 3, dtype=torch.uint8), 45)
    assert out.shape == (2, 3, 45, 80)
