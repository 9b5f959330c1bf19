"""The 3D SwinV2 backbone against an unwindowed brute-force reference, and its public contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from videoswinv2 import create_model, list_models
from videoswinv2.models.swin_transformer_v2_3d import (
    SwinTransformerV2_3D,
    SwinV2Block3D,
    WindowAttention3D,
    effective_window_and_shift,
)


def randomise_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values: the zero-initialised post-norms would hide errors."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "logit_scale" in name:
                p.copy_(torch.rand(p.shape, generator=gen) * 3)  # scale exp(0..3), up to the clamp region
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return module


# Two stages with windows small enough that 4x24x24 clips shift, pad and shrink.
TINY_KWARGS = dict(
    embed_dim=16,
    depths=(2, 2),
    num_heads=(2, 4),
    window_size=(2, 3, 3),
    patch_size=(1, 2, 2),
    pretrained_window_sizes=(0, 0),
    num_classes=5,
    drop_path_rate=0.0,
)


def tiny_model(**overrides) -> SwinTransformerV2_3D:
    return SwinTransformerV2_3D(**{**TINY_KWARGS, **overrides})


def brute_force_window_attention(block: SwinV2Block3D, x: torch.Tensor) -> torch.Tensor:
    """Full attention over all real tokens of ``(B, T, H, W, C)``; a pair may attend only when
    both tokens fall in the same shifted window (-inf otherwise) and the same shift region
    (-100 otherwise). The position bias is the CPB MLP evaluated per pair from first principles."""
    attn: WindowAttention3D = block.attn
    B, T, H, W, C = x.shape
    feat = (T, H, W)
    window, shift = effective_window_and_shift(feat, block.window_size, block.shift_size)
    grid = torch.stack(torch.meshgrid(*(torch.arange(n) for n in feat), indexing="ij"), -1).reshape(-1, 3)
    size, win, sft = torch.tensor(feat), torch.tensor(window), torch.tensor(shift)
    rolled = (grid - sft) % size  # where each token sits after the cyclic shift
    window_id = rolled // win
    region = rolled >= size - sft  # wrapped tokens form their own region on a shifted axis
    same_window = (window_id[:, None] == window_id[None]).all(-1)
    same_region = (region[:, None] == region[None]).all(-1)

    rel = (rolled[:, None] - rolled[None]).float()  # (L, L, 3)
    pretrained = torch.tensor(attn.pretrained_window, dtype=torch.float)
    denominator = torch.where(pretrained > 0, pretrained, win.float()) - 1
    rel = rel / denominator.clamp(min=1) * 8
    rel = torch.sign(rel) * torch.log2(rel.abs() + 1) / 3
    bias = 16 * torch.sigmoid(attn.cpb_mlp(rel)).permute(2, 0, 1)  # (heads, L, L)

    tokens = x.reshape(B, -1, C)
    qkv = F.linear(
        tokens, attn.qkv.weight, torch.cat([attn.q_bias, torch.zeros_like(attn.q_bias), attn.v_bias])
    )
    q, k, v = qkv.reshape(B, -1, 3, attn.num_heads, C // attn.num_heads).permute(2, 0, 3, 1, 4)
    scale = attn.logit_scale.clamp(max=math.log(100)).exp()
    logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-1, -2) * scale + bias
    logits = logits + torch.where(same_region, 0.0, -100.0)
    logits = logits.masked_fill(~same_window, float("-inf"))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, -1, C)
    return attn.proj(out).reshape(B, T, H, W, C)


@pytest.mark.parametrize(
    "feat, window, shift, pretrained",
    [
        ((4, 6, 6), (2, 3, 3), True, (0, 0, 0)),  # shifted, no padding
        ((4, 6, 6), (2, 3, 3), False, (0, 0, 0)),  # unshifted
        ((5, 7, 8), (2, 3, 3), True, (0, 0, 0)),  # shifted, padding on every axis
        ((5, 7, 8), (2, 3, 3), False, (0, 0, 0)),  # unshifted with padding
        ((2, 7, 5), (4, 3, 3), True, (0, 0, 0)),  # T shrinks to 2 (no T shift), H/W shift + pad
        ((1, 4, 4), (2, 4, 3), True, (0, 0, 0)),  # one frame per window: T and H shrink, W shifts
        ((3, 6, 7), (2, 3, 3), True, (0, 5, 5)),  # spatial pretrained window differs from window
        ((4, 6, 6), (2, 3, 3), True, (4, 2, 3)),  # pretrained windows on all axes
    ],
)
def test_windowed_attention_equals_brute_force(feat, window, shift, pretrained):
    torch.manual_seed(0)
    block = randomise_(SwinV2Block3D(8, 2, window, shift=shift, pretrained_window=pretrained)).eval()
    x = torch.randn(2, *feat, 8)
    expected = brute_force_window_attention(block, x)
    with torch.no_grad():
        got = block.window_attention(x)
        expected = expected.detach()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_brute_force_reference_is_sensitive_to_the_mask():
    """The reference must disagree with a block whose mask is wrong, or the test above proves nothing."""
    block = randomise_(SwinV2Block3D(8, 2, (2, 3, 3), shift=True)).eval()
    x = torch.randn(1, 4, 6, 6, 8)
    with torch.no_grad():
        expected = brute_force_window_attention(block, x)
        block.shift_size = (0, 0, 0)  # windows no longer match the reference
        wrong = block.window_attention(x)
    assert (wrong - expected).abs().max() > 1e-2


def test_window_of_one_frame_has_finite_position_bias():
    attn = WindowAttention3D(8, 2)
    bias = attn.position_bias((1, 1, 3), torch.device("cpu"))
    assert bias.shape == (2, 3, 3) and torch.isfinite(bias).all()


@pytest.mark.parametrize("name", list_models())
def test_parameter_counts_match_timm_2d_plus_the_third_dimension(name):
    """3D = timm's 2D SwinV2 count, plus the temporal patch kernel, plus one CPB input column per
    block, with a 400-class instead of a 1000-class head."""
    timm = pytest.importorskip("timm")
    size = name.split("_")[1]
    with torch.device("meta"):
        ours = create_model(name)
        timm_name = "swinv2_large_window12_192" if size == "large" else f"swinv2_{size}_window8_256"
        theirs = timm.create_model(timm_name, num_classes=1000)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    blocks = sum(len(stage.blocks) for stage in ours.layers)
    embed_dim, features = ours.patch_embed.proj.out_channels, ours.num_features
    expected = (
        count(theirs)
        + embed_dim * 3 * 4 * 4 * (2 - 1)  # temporal patch size 2
        + 512 * blocks  # cpb_mlp first layer: 3 inputs instead of 2
        + (400 - 1000) * (features + 1)
    )
    assert count(ours) == expected


@pytest.mark.parametrize("name", list_models())
def test_every_variant_trains_on_a_small_clip(name):
    model = create_model(name, num_classes=3, window_size=(2, 2, 2))
    x = torch.randn(1, 3, 4, 64, 64)
    logits = model(x)
    assert logits.shape == (1, 3)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("shape", [(2, 3, 6, 100, 100), (1, 3, 1, 32, 48), (1, 3, 3, 37, 29)])
def test_odd_shapes_give_finite_outputs_and_gradients(shape):
    model = randomise_(tiny_model(window_size=(8, 7, 7), patch_size=(2, 4, 4)), seed=1)
    for p in model.parameters():
        p.data.mul_(0.2)
    x = torch.randn(*shape, requires_grad=True)
    out = model(x)
    out.square().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_forward_features_shape_and_forward_head():
    model = tiny_model()
    x = torch.randn(2, 3, 5, 24, 20)
    feats = model.forward_features(x)
    # patch (1, 2, 2): (5, 12, 10); one spatial merge: (5, 6, 5)
    assert feats.shape == (2, 32, 5, 6, 5)
    torch.testing.assert_close(model.forward_head(feats), model(x))
    assert model.forward_head(feats, pre_logits=True).shape == (2, 32)


def test_shifted_blocks_and_window_shrink_follow_the_feature_size():
    assert effective_window_and_shift((8, 14, 14), (8, 7, 7), (4, 3, 3)) == ((8, 7, 7), (0, 3, 3))
    assert effective_window_and_shift((4, 7, 9), (8, 7, 7), (4, 3, 3)) == ((4, 7, 7), (0, 0, 3))
    model = create_model("videoswinv2_tiny")
    shifts = [b.shift_size for b in model.layers[2].blocks]
    assert shifts == [(0, 0, 0), (4, 3, 3)] * 3


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.randn(3, 8, 32, 32), "(B, C, T, H, W)"),
        (torch.randn(1, 1, 4, 32, 32), "3 channels"),
        (torch.randn(1, 3, 0, 32, 32), "empty"),
        (torch.zeros(1, 3, 2, 32, 32, dtype=torch.uint8), "floating-point"),
    ],
)
def test_bad_input_raises_a_clear_value_error(x, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_model()(x)


def test_bad_construction_arguments_are_reported():
    with pytest.raises(ValueError, match="one entry per stage"):
        tiny_model(depths=(2, 2, 2))
    with pytest.raises(ValueError, match="window_size"):
        tiny_model(window_size=(2, 0, 3))
    with pytest.raises(ValueError, match="unknown model"):
        create_model("videoswinv2_huge")


def test_create_model_applies_overrides():
    model = create_model("videoswinv2_tiny", num_classes=7, window_size=(4, 7, 7), drop_path_rate=0.3)
    assert model.head.fc.out_features == 7
    assert model.layers[0].blocks[0].window_size == (4, 7, 7)
    assert model.layers[3].blocks[1].drop_path1.p == pytest.approx(0.3)


def test_extra_norm_every_period_blocks():
    model = tiny_model(depths=(2, 4), extra_norm_period=2)
    has_extra = [not isinstance(b.extra_norm, torch.nn.Identity) for s in model.layers for b in s.blocks]
    assert has_extra == [False, True, False, True, False, True]


@pytest.mark.parametrize("flags", [True, [True, False], [False, True]], ids=["all", "stage1", "stage2"])
def test_gradient_checkpointing_per_stage_recomputes_those_stages_with_the_same_gradients(flags):
    torch.manual_seed(0)
    model = randomise_(tiny_model())
    x = torch.randn(1, 3, 4, 24, 24)
    model(x).sum().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(flags)
    calls = [0] * len(model.layers)
    for i, stage in enumerate(model.layers):
        # counted in forward itself: recomputation does not run forward hooks
        def counted(x, i=i, forward=stage.blocks[0].forward):
            calls[i] += 1
            return forward(x)

        stage.blocks[0].forward = counted
    model(x).sum().backward()
    expected = [True] * len(model.layers) if flags is True else flags
    assert calls == [2 if recomputed else 1 for recomputed in expected]  # backward reruns the forward
    for a, p in zip(plain, model.parameters()):
        torch.testing.assert_close(p.grad, a)


def test_gradient_checkpointing_takes_one_flag_or_one_per_stage():
    model = tiny_model(grad_checkpointing=[False, True])
    assert [stage.grad_checkpointing for stage in model.layers] == [False, True]
    with pytest.raises(ValueError, match=r"one bool or one per stage \(2\)"):
        tiny_model(grad_checkpointing=[True, True, True])


def test_drop_path_is_active_in_training_only():
    model = randomise_(tiny_model(drop_path_rate=0.9))
    x = torch.randn(4, 3, 2, 16, 16)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model(x), model(x))


def test_mask_and_table_cache_is_the_models_own_and_stays_bounded_in_bytes():
    model, other = tiny_model().eval(), tiny_model().eval()
    model.constants.max_bytes = 200_000
    assert all(block.attn.constants is model.constants for stage in model.layers for block in stage.blocks)
    with torch.no_grad():
        for size in range(12, 60, 2):  # 24 input sizes, each with its own masks
            model(torch.randn(1, 3, 2, size, size))
    assert 0 < model.constants.nbytes <= 200_000 and other.constants.nbytes == 0
    model.constants.clear()
    assert model.constants.nbytes == 0


def test_pretrained_windows_default_to_none_per_stage_and_can_be_set_later():
    model = create_model("videoswinv2_tiny", depths=(2, 2, 2), num_heads=(2, 4, 8))
    assert model.pretrained_window_sizes == ((0, 0, 0),) * 3
    windows = (5, (2, 3, 3))
    built = randomise_(tiny_model(pretrained_window_sizes=windows)).eval()
    later = tiny_model(pretrained_window_sizes=None).eval()
    later.load_state_dict(built.state_dict())
    x = torch.randn(1, 3, 4, 24, 24)
    with torch.no_grad():
        assert not torch.allclose(later(x), built(x))
        later.set_pretrained_window_sizes(windows)
        torch.testing.assert_close(later(x), built(x), rtol=0, atol=0)
    assert later.layers[0].blocks[1].attn.pretrained_window == (0, 5, 5)
    with pytest.raises(ValueError, match="one entry per stage"):
        later.set_pretrained_window_sizes((5,))


def test_a_forward_under_inference_mode_leaves_nothing_that_breaks_training():
    model = randomise_(tiny_model())  # a fresh cache: the inference-mode forward builds every tensor
    x = torch.randn(1, 3, 4, 24, 24)
    with torch.inference_mode():
        model.eval()(x)
    model.train()(x).sum().backward()
    assert model.layers[0].blocks[1].attn.cpb_mlp[0].weight.grad is not None
