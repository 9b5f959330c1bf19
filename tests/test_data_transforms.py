"""Transforms: shapes, normalisation values, crop positions, per-clip consistency, what a flip
does to labels, random erasing."""

from pathlib import Path

import pytest
import torch

from videoswinv2.data import (
    EvalTransform,
    TrainTransform,
    mirrored_classes,
    normalize,
    read_class_names,
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


def _erased(clip: torch.Tensor) -> torch.Tensor:
    """``(T, H, W)``: where a normalised clip has the mean colour (up to its rounding)."""
    return (clip * torch.tensor(INPUT_STD).view(3, 1, 1, 1)).abs().amax(0) < 0.5


def test_random_erasing_erases_one_box_in_range_the_same_on_every_frame() -> None:
    torch.manual_seed(0)
    frames = torch.zeros(4, 64, 64, 3, dtype=torch.uint8)  # black, unlike the box's mean colour
    area = (0.1, 0.2)
    transform = TrainTransform(64, (1.0, 1.0), (1.0, 1.0), random_erasing=1.0, random_erasing_area=area)
    for _ in range(20):
        erased = _erased(transform(frames))
        assert torch.equal(erased, erased[:1].expand_as(erased))  # the same box on every frame
        rows, cols = erased[0].any(1).nonzero(), erased[0].any(0).nonzero()
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert erased[0].sum() == h * w  # one box
        slack = (h + w) / 2 + 1  # h and w are rounded from the drawn area
        assert area[0] * 64 * 64 - slack <= h * w <= area[1] * 64 * 64 + slack


def test_random_erasing_with_probability_0_erases_nothing() -> None:
    torch.manual_seed(0)
    frames = torch.zeros(4, 64, 64, 3, dtype=torch.uint8)
    transform = TrainTransform(64, random_erasing=0.0, random_erasing_area=(0.1, 0.2))
    assert not any(_erased(transform(frames)).any() for _ in range(20))


def test_mirrored_classes_of_ssv2_are_mmaction2s_flip_label_map() -> None:
    # The 174 names of the official labels.json, in its label order (ids 0-173).
    classes = read_class_names(Path(__file__).parent / "data" / "ssv2_classes.txt")
    mirror, unpaired = mirrored_classes(classes)
    assert mirror == {86: 87, 87: 86, 93: 94, 94: 93, 166: 167, 167: 166}
    assert classes[93] == "Pushing something from left to right"
    assert unpaired == ["Plugging something into something but pulling it right out as you remove your hand"]


def test_mirrored_classes_exchange_whole_words_in_their_case() -> None:
    classes = [
        "Pushing something from left to right",
        "Pushing something from right to left",
        "Left hand up",
        "Right hand up",
        "Moving left",  # its mirror would be "Moving right", not "Moving Right"
        "Moving Right",
        "Leftovers on the table",  # not the word "left"
        "Holding something",
    ]
    mirror, unpaired = mirrored_classes(classes)
    assert mirror == {0: 1, 1: 0, 2: 3, 3: 2}
    assert unpaired == ["Moving left", "Moving Right"]


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
