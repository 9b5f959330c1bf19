"""The attention kernels behind ``attn_impl``: each equals the explicit kernel (itself checked
against an unwindowed brute force in test_model.py) in outputs and every parameter gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_model import TINY_KWARGS, randomise_

from videoswinv2 import create_model
from videoswinv2.models.attention import (
    _CosineAttention,
    cosine_window_attention,
    flex_score_mod,
    resolve_attn_impl,
)
from videoswinv2.models.swin_transformer_v2_3d import WindowAttention3D

# (input clip, what it exercises); model: patch (1, 2, 2), window (2, 3, 3).
SHAPES = {
    "shifted": (2, 3, 4, 12, 12),  # window multiples: masks from the shift only
    "padded": (2, 3, 5, 22, 26),  # padding to window multiples, masked as keys
    "shrunk": (1, 3, 1, 8, 10),  # T = 1 < window: the window shrinks and T does not shift
}


def small_model(attn_impl: str, **overrides) -> torch.nn.Module:
    """test_model's tiny model, built through ``create_model`` as users reach ``attn_impl``."""
    return randomise_(create_model("videoswinv2_tiny", **TINY_KWARGS, attn_impl=attn_impl, **overrides))


def outputs_and_gradients(model: torch.nn.Module, x: torch.Tensor):
    model.zero_grad()
    out = model(x)
    out.square().sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("impl", ["sdpa", "auto"])
def test_attention_paths_equal_the_explicit_kernel_in_outputs_and_gradients(impl, shape):
    x = torch.randn(shape)
    expected_out, expected_grads = outputs_and_gradients(small_model("explicit"), x)
    out, grads = outputs_and_gradients(small_model(impl), x)
    torch.testing.assert_close(out, expected_out, atol=1e-5, rtol=1e-5)
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("impl", ["flex", "auto"])
def test_paths_equal_the_explicit_kernel_in_inference(impl, shape):
    """Without autograd, "auto" on CPU is SDPA's fused CPU kernel. PyTorch has no CPU backward for
    FlexAttention; its gradients are checked on CUDA below and its score_mod's on CPU next."""
    x = torch.randn(shape)
    with torch.no_grad():
        expected = small_model("explicit")(x)
        got = small_model(impl)(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("with_mask", "per_window"),
    [(True, False), (False, False), (False, True)],
    ids=["mask", "no-mask", "per-window-bias"],
)
def test_flex_score_mod_applied_densely_gives_the_explicit_logits_and_bias_gradient(with_mask, per_window):
    B, nW, heads, N = 2, 3, 2, 12
    bias_shape = (nW, heads, N, N) if per_window else (heads, N, N)
    bias = torch.randn(bias_shape, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(nW, 1, N, N) < 0.3).double() * -100 if with_mask else None
    scores = torch.randn(B * nW, heads, N, N, dtype=torch.float64)
    b, h, qi, ki = torch.meshgrid(*(torch.arange(n) for n in scores.shape), indexing="ij")
    got = flex_score_mod(bias, mask)(scores, b, h, qi, ki)
    expected = (scores.view(B, nW, heads, N, N) + bias + (0 if mask is None else mask)).flatten(0, 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    weights = torch.randn_like(scores)
    (grad,) = torch.autograd.grad((got * weights).sum(), bias)
    expected_grad = weights.view(B, nW, heads, N, N).sum(0).sum_to_size(bias_shape)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FlexAttention's backward needs CUDA")
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_flex_path_gradients_on_cuda(shape):
    x = torch.randn(shape, device="cuda")
    expected_out, expected_grads = outputs_and_gradients(small_model("explicit").cuda(), x)
    out, grads = outputs_and_gradients(small_model("flex").cuda(), x)
    torch.testing.assert_close(out, expected_out, atol=1e-4, rtol=1e-4)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], atol=1e-3, rtol=1e-3, msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fused SDPA kernels need CUDA")
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_sdpa_runs_the_memory_efficient_kernel_on_cuda(shape):
    """Forced onto the memory-efficient kernel, SDPA raises instead of falling back to its math
    path if our 4-D layout, broadcast bias or its gradient were refused."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    x = torch.randn(shape, device="cuda")
    expected_out, expected_grads = outputs_and_gradients(small_model("explicit").cuda(), x)
    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
        out, grads = outputs_and_gradients(small_model("sdpa").cuda(), x)
    torch.testing.assert_close(out, expected_out, atol=1e-4, rtol=1e-4)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], atol=1e-3, rtol=1e-3, msg=name)


def test_sdpa_path_calls_sdpa_with_4d_inputs_only(monkeypatch):
    """Fused kernels take 4-D q, k, v only; any other rank runs SDPA's unfused math path."""
    ranks = []

    def recording_sdpa(q, k, v, **kwargs):
        ranks.append((q.ndim, k.ndim, v.ndim, kwargs["attn_mask"].ndim))
        return real_sdpa(q, k, v, **kwargs)

    real_sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", recording_sdpa)
    model = small_model("sdpa")
    model(torch.randn(SHAPES["padded"])).sum().backward()
    blocks = sum(len(stage.blocks) for stage in model.layers)
    assert ranks == [(4, 4, 4, 4)] * blocks


def test_sdpa_bias_and_mask_broadcast_over_clips_without_a_copy(monkeypatch):
    masks = []

    def recording_sdpa(q, k, v, attn_mask, **kwargs):
        masks.append((q.shape, attn_mask.shape))
        return real_sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    real_sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", recording_sdpa)
    B, nW, heads, N, d = 3, 4, 2, 8, 4
    q, k, v = (torch.randn(B, nW, heads, N, d) for _ in range(3))
    scale, bias = torch.ones(heads, 1, 1), torch.randn(heads, N, N)
    mask = torch.zeros(nW, 1, N, N)
    cosine_window_attention(q, k, v, scale, bias, mask, impl="sdpa")
    cosine_window_attention(q, k, v, scale, bias, None, impl="sdpa")
    assert masks == [
        ((B, nW * heads, N, d), (1, nW * heads, N, N)),
        ((B * nW, heads, N, d), (1, heads, N, N)),
    ]


def test_auto_takes_the_fastest_measured_kernel_per_device_and_mode():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_attn_impl("auto", cpu, needs_grad=True, dropout_p=0.0) == "explicit"
    assert resolve_attn_impl("auto", cpu, needs_grad=False, dropout_p=0.0) == "sdpa"
    assert resolve_attn_impl("auto", cpu, needs_grad=True, dropout_p=0.1) == "sdpa"
    assert resolve_attn_impl("auto", cuda, needs_grad=True, dropout_p=0.0) == "sdpa"
    assert resolve_attn_impl("flex", cpu, needs_grad=False, dropout_p=0.0) == "flex"


def test_unknown_attn_impl_is_refused_when_the_model_is_built():
    with pytest.raises(
        ValueError, match=r"attn_impl must be one of 'auto', 'explicit', 'sdpa', 'flex'.*'fused'"
    ):
        create_model("videoswinv2_tiny", attn_impl="fused")
    model = small_model("auto")
    with pytest.raises(ValueError, match="attn_impl must be one of"):
        model.set_attn_impl("math")
    model.set_attn_impl("sdpa")
    assert {m.attn_impl for m in model.modules() if isinstance(m, WindowAttention3D)} == {"sdpa"}


def test_attention_dropout_needs_sdpa():
    attn = WindowAttention3D(8, 2, attn_drop=0.5).train()
    x = torch.randn(2, 3, 8, 8)  # (B, nW, N, C)
    assert attn(x, (2, 2, 2)).shape == x.shape  # "auto" takes SDPA when dropout is active
    attn.attn_impl = "explicit"
    with pytest.raises(ValueError, match="attention dropout needs attn_impl 'sdpa' or 'auto'"):
        attn(x, (2, 2, 2))


@pytest.mark.parametrize(
    "q_shape, bias_shape",
    [((3, 2, 5, 4), (2, 5, 5)), ((2, 3, 2, 5, 4), (3, 1, 5, 5)), ((2, 3, 2, 5, 4), (3, 2, 5, 5))],
    ids=["unshifted", "mask-broadcast-over-heads", "bias-plus-mask"],
)
def test_explicit_cosine_attention_gradients_pass_gradcheck(q_shape, bias_shape):
    q, k, v = (torch.randn(q_shape, dtype=torch.float64, requires_grad=True) for _ in range(3))
    scale = (1 + 5 * torch.rand(q_shape[-3], 1, 1, dtype=torch.float64)).requires_grad_()  # per head
    bias = torch.randn(bias_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_CosineAttention.apply, (q, k, v, scale, bias))


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        "aot_eager",
        pytest.param(
            "inductor", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="inductor on CUDA")
        ),
    ],
)
def test_compiled_model_has_one_graph_and_matches_eager_in_training_with_checkpointing(backend):
    """fullgraph=True fails on any graph break; error_on_recompile fails if a second training step
    of the same shape compiles again (the Python cache of masks and tables must not be traced).

    On CPU the graphs run through AOTAutograd (``aot_eager``), where checkpointing and the custom
    backward are traced: inductor's C++ kernels are CPU-only code no run trains with, and
    compiling them took 160 s with a cold cache (24 s warm). Inductor is tested on CUDA."""
    device = "cuda" if backend == "inductor" else "cpu"
    x = torch.randn(SHAPES["padded"], device=device)
    # the first stage recomputed in backward: checkpointing must not break the graph either
    eager, compiled = (small_model("auto", grad_checkpointing=[True, False]).to(device) for _ in range(2))
    # its cache is cold: that is what would be traced and recompiled
    compiled.compile(fullgraph=True, backend=backend)
    for step in range(2):
        with torch._dynamo.config.patch(error_on_recompile=step > 0):
            out, grads = outputs_and_gradients(compiled, x + step)
            expected_out, expected_grads = outputs_and_gradients(eager, x + step)
        torch.testing.assert_close(out, expected_out, atol=1e-5, rtol=1e-5)
        for name, grad in grads.items():
            torch.testing.assert_close(grad, expected_grads[name], atol=1e-4, rtol=1e-4, msg=name)
    with torch.no_grad():  # evaluation compiles its own graph, also without breaks
        torch.testing.assert_close(compiled(x), eager(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compiled_flex_takes_a_kernel_per_shape_beyond_dynamos_default_limit():
    """Outside a compiled model (flex on CUDA) every stage and batch size is a shape of its own;
    past dynamo's default of 8 per function it would fall back to the unfused reference."""
    from videoswinv2.models.attention import compiled_flex_attention

    heads, N, d = 2, 16, 16
    bias = torch.randn(heads, N, N)
    # dynamo's limit lowered to 2 stands in for its default of 8 (which would take 9 compiles)
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True, recompile_limit=2):
        for batch in range(1, 5):
            q, k, v = (torch.randn(batch, heads, N, d) for _ in range(3))
            got = compiled_flex_attention(q, k, v, flex_score_mod(bias, None))
            expected = torch.softmax(q @ k.transpose(-2, -1) + bias, -1) @ v
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


# -- the bias cache of evaluation and inference -----------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("impl", ["explicit", "sdpa", "flex"])
def test_cached_bias_gives_the_outputs_of_the_uncached_model(impl, shape, monkeypatch):
    model = small_model(impl).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        expected = model(x)
        model.cache_attention_bias(True)
        first = model(x)
        calls = []
        monkeypatch.setattr(WindowAttention3D, "position_bias", lambda *args: calls.append(args))
        second = model(x)
    assert calls == []  # the second forward computed no bias: it reused the first one's sums
    if impl == "flex":  # adds bias and mask to the scores one after the other, not as one sum
        torch.testing.assert_close(first, expected, rtol=1e-6, atol=1e-6)
    else:  # the same sum of the same tensors: bit for bit
        assert torch.equal(first, expected)
    assert torch.equal(second, first)


def test_bias_cache_follows_weight_changes_and_steps_aside_for_gradients():
    model = small_model("auto")
    x = torch.randn(SHAPES["padded"])
    model.cache_attention_bias(True)
    with torch.inference_mode():  # filled under inference_mode, used outside it below
        model(x)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, WindowAttention3D):
                module.cpb_mlp[2].weight.mul_(1.5)  # in place, as an optimizer step
        updated = model(x)
    model.set_pretrained_window_sizes([(4, 6, 6), (4, 6, 6)])
    with torch.no_grad():
        rescaled = model(x)
    out, grads = outputs_and_gradients(model, x)  # needs the bias's gradient: computed afresh
    model.cache_attention_bias(False)
    assert all(m.bias_cache is None for m in model.modules() if isinstance(m, WindowAttention3D))
    torch.testing.assert_close(out.detach(), rescaled, rtol=1e-5, atol=1e-5)  # explicit vs SDPA kernel
    expected_out, expected_grads = outputs_and_gradients(model, x)
    torch.testing.assert_close(out, expected_out, rtol=0, atol=0)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], rtol=0, atol=0, msg=name)
    model.set_pretrained_window_sizes(None)
    with torch.no_grad():
        assert torch.equal(updated, model(x))
        assert not torch.equal(updated, rescaled)
