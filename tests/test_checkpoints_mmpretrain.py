"""The mmpretrain (OpenMMLab) SwinV2 layout, against mmpretrain's own model code.

mmpretrain's ``ImageClassifier`` with its ``SwinTransformerV2`` backbone is built from a tiny
config with every parameter randomised, saved as its model zoo does (``{'meta', 'state_dict'}``,
``backbone.`` / ``head.`` prefixes, coordinate tables stored), read back and inflated; a static
clip must give the 2D features and logits.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from test_checkpoints_inflate import (
    ARCH,
    ATOL,
    IMAGE,
    IMG,
    NUM_CLASSES,
    WINDOW,
    model_3d,
    randomise_,
    static_clip,
)
from torch import Tensor, nn

from videoswinv2.checkpoints import load_pretrained, read_checkpoint, unfold_to_concat_order

with warnings.catch_warnings():  # mmcv-lite warns that its compiled ops are absent; none is used here
    warnings.simplefilter("ignore")
    from mmpretrain.models import ImageClassifier

MLP_RATIO = 4.0  # mmpretrain's blocks fix it (ffn_ratio); the shared tiny ARCH uses 2
REDUCTIONS = ("layers.1.downsample.reduction.weight", "layers.2.downsample.reduction.weight")


def mmpretrain_2d(pretrained_window_sizes, out_indices, extra_norm_every_n_blocks) -> nn.Module:
    arch = dict(
        embed_dims=ARCH["embed_dim"],
        depths=list(ARCH["depths"]),
        num_heads=list(ARCH["num_heads"]),
        extra_norm_every_n_blocks=extra_norm_every_n_blocks,
    )
    model = ImageClassifier(
        backbone=dict(
            type="SwinTransformerV2",
            arch=arch,
            img_size=IMG,
            window_size=WINDOW,
            out_indices=out_indices,
            drop_path_rate=0.0,
            pretrained_window_sizes=list(pretrained_window_sizes),
        ),
        neck=dict(type="GlobalAveragePooling"),
        head=dict(type="LinearClsHead", num_classes=NUM_CLASSES, in_channels=ARCH["embed_dim"] * 4),
    )
    return randomise_(model, seed=2)


def save_mmpretrain(model: nn.Module, path: Path) -> tuple[Tensor, Tensor]:
    """Save in mmpretrain's checkpoint layout; return its final features ``(B, H', W', C)`` and logits."""
    meta = {"mmpretrain_version": "1.2.0", "dataset_meta": {"classes": [str(i) for i in range(NUM_CLASSES)]}}
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)
    with torch.no_grad():
        features = model.backbone(IMAGE)[-1].permute(0, 2, 3, 1)
        logits = model(IMAGE)
    return features, logits


def max_difference(model_3d_: nn.Module, features: Tensor, logits: Tensor) -> float:
    with torch.no_grad():
        out = model_3d_.forward_features(static_clip(IMAGE))  # (B, C, T', H', W')
        out_logits = model_3d_.forward_head(out)
    diffs = [(out[:, :, t].permute(0, 2, 3, 1) - features).abs().max() for t in range(out.shape[2])]
    return max([*diffs, (out_logits - logits).abs().max()]).item()


CASES = {
    # windows the 2D model was trained with, out_indices, extra_norm_every_n_blocks, windows the file shows
    "plain": ((0, 0, 0), (2,), 0, (4, 4, 4)),
    "pretrained-windows-extra-norms-two-outputs": ((6, 6, 3), (1, 2), 2, (6, 6, 3)),
}


@pytest.mark.parametrize("case", CASES)
def test_static_clip_reproduces_mmpretrains_model(case, tmp_path):
    windows, out_indices, extra_norm, shown = CASES[case]
    features, logits = save_mmpretrain(mmpretrain_2d(windows, out_indices, extra_norm), tmp_path / "mm.pth")
    ckpt = read_checkpoint(tmp_path / "mm.pth")
    assert (ckpt.layout, ckpt.pretrained_window_sizes, ckpt.num_classes) == ("mmpretrain", shown, NUM_CLASSES)
    assert (ckpt.embed_dim, ckpt.depths, ckpt.num_heads, ckpt.mlp_ratio) == (
        ARCH["embed_dim"],
        ARCH["depths"],
        ARCH["num_heads"],
        MLP_RATIO,
    )
    model = model_3d(shown, extra_norm_period=extra_norm, mlp_ratio=MLP_RATIO)
    report = load_pretrained(model, ckpt)
    assert not report.reinitialised  # the extra norms come from the checkpoint's norm3
    if 1 in out_indices:
        assert "norm of an intermediate stage output" in report.dropped["backbone.norm1.weight"]
    difference = max_difference(model, features, logits)
    print(f"mmpretrain {case}: max difference {difference:.2e}")
    assert difference < ATOL


def test_reduction_columns_in_unfold_order_would_break_the_equality(tmp_path):
    features, logits = save_mmpretrain(mmpretrain_2d((0, 0, 0), (2,), 0), tmp_path / "mm.pth")
    ckpt = read_checkpoint(tmp_path / "mm.pth")
    raw = torch.load(tmp_path / "mm.pth", weights_only=True)["state_dict"]
    for key in REDUCTIONS:  # the canonical weight is the permuted stored one, not the stored one
        stored = raw["backbone.stages." + key.removeprefix("layers.")]
        assert torch.equal(ckpt.state_dict[key], unfold_to_concat_order(stored))
        assert not torch.equal(ckpt.state_dict[key], stored)
        ckpt.state_dict[key] = stored
    model = model_3d((4, 4, 4), mlp_ratio=MLP_RATIO)
    load_pretrained(model, ckpt)
    difference = max_difference(model, features, logits)
    print(f"mmpretrain, reduction left in Unfold order: max difference {difference:.2e}")
    assert difference > 1e-2


def test_unfold_to_concat_order_matches_the_two_gatherings():
    """nn.Unfold's 2x2 columns times W equal SwinV2's concatenation x0..x3 times the permuted W."""
    batch, channels, size = 2, 5, 4
    x = torch.randn(batch, channels, size, size)
    weight = torch.randn(7, 4 * channels)
    unfolded = nn.Unfold(kernel_size=2, stride=2)(x).transpose(1, 2)  # (B, L, C*4): c*4 + dh*2 + dw
    grid = x.permute(0, 2, 3, 1)  # (B, H, W, C)
    x0, x1, x2, x3 = grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]
    concatenated = torch.cat([x0, x1, x2, x3], -1).reshape(batch, -1, 4 * channels)
    torch.testing.assert_close(unfolded @ weight.T, concatenated @ unfold_to_concat_order(weight).T)
