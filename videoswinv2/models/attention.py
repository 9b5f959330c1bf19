"""Scaled cosine attention over 3D windows: one function, several kernels behind ``attn_impl``.

``softmax(scale * cos(q, k) + bias + mask) @ v`` per window and head, with the continuous
position bias ``(heads, N, N)`` (learnt) and the shifted-window mask ``(nW, 1, N, N)`` or None; in
inference the two may come added, ``(nW, heads, N, N)``, so a model caching the sum saves an
addition as large as the logits. Kernels (``attn_impl``):

- ``"explicit"``: ``_CosineAttention``, two ``N x N`` buffers and an in-place softmax backward;
  the fastest to train on CPU, where SDPA cannot differentiate a float mask.
- ``"sdpa"``: ``F.scaled_dot_product_attention`` on 4-D q, k, v (other ranks fall back to its
  math path), the per-head scale folded into the unit q; windows go into the head dimension with
  a mask and the batch dimension without, so the bias broadcasts without a copy. On CUDA the
  memory-efficient kernel (the only fused one with a bias gradient); on CPU without autograd the
  fused CPU kernel, ~1.7x faster than ``"explicit"`` in fp32.
- ``"flex"``: FlexAttention, the bias and mask read in ``score_mod`` (no ``N x N`` tensor), on
  CUDA compiled per shape or fused into a compiled model; on CPU inference only (no backward).
- ``"auto"``: ``"sdpa"`` on accelerators and with dropout; on CPU ``"explicit"`` for gradients.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

ATTN_IMPLS = ("auto", "explicit", "sdpa", "flex")
NORMALIZE_EPS = 1e-12  # F.normalize's


def check_attn_impl(impl: str) -> str:
    if impl not in ATTN_IMPLS:
        raise ValueError(f"attn_impl must be one of {', '.join(map(repr, ATTN_IMPLS))}, got {impl!r}")
    return impl


def _scaled_unit(x: torch.Tensor, scale: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """``x / max(|x|, eps) * scale`` in one pass over x (the scale joins the reciprocal norm),
    and that clamped norm (as ``F.normalize`` clamps it)."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(NORMALIZE_EPS)
    return x * (scale / norm), norm


class _CosineAttention(torch.autograd.Function):
    """``softmax(scale * cos(q, k) + bias) @ v`` with two ``N x N`` buffers per call instead of five.

    Autograd's version allocates logits, biased logits and probabilities in the forward pass and
    two gradients in the backward pass; this one adds the bias and takes the softmax in place and
    does the softmax backward in place. It saves the raw q, k (views of the qkv output, which v
    keeps alive anyway) and recomputes their unit vectors in the backward pass instead of saving
    them. On CPU, where every fresh buffer of this size is paged in anew, a stage-1 attention is
    ~30% faster (fwd+bwd). Shapes: q, k, v ``(..., heads, N, d)``; ``scale`` and ``bias``
    broadcast against ``(..., heads, 1, 1)`` and ``(..., heads, N, N)``.
    """

    @staticmethod
    def forward(ctx, q, k, v, scale, bias):  # type: ignore[override]
        q_scaled, q_norm = _scaled_unit(q, scale)
        k_unit, k_norm = _scaled_unit(k, 1.0)
        attn = torch.matmul(q_scaled, k_unit.transpose(-2, -1)).add_(bias)
        attn = torch.softmax(attn, dim=-1, out=attn)
        ctx.save_for_backward(q, k, v, scale, q_norm, k_norm, attn)
        ctx.bias_shape = bias.shape
        return attn @ v

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        q, k, v, scale, q_norm, k_norm, attn = ctx.saved_tensors
        grad_v = attn.transpose(-2, -1) @ grad_out
        grad = grad_out @ v.transpose(-2, -1)
        # Softmax backward, p * (g - <g, p>), in place; the row dot product as a batched matmul
        # so that no product buffer is allocated.
        row_dot = (grad.unsqueeze(-2) @ attn.unsqueeze(-1)).squeeze(-1)
        grad = grad.sub_(row_dot).mul_(attn)
        grad_bias = grad.sum_to_size(ctx.bias_shape) if ctx.needs_input_grad[4] else None
        q_unit, k_unit = q / q_norm, k / k_norm
        grad_q_unit = grad @ k_unit
        grad_k_unit = grad.transpose(-2, -1) @ (q_unit * scale)
        grad_scale = (grad_q_unit * q_unit).sum_to_size(scale.shape) if ctx.needs_input_grad[3] else None
        grad_q_unit = grad_q_unit.mul_(scale)

        def through_normalize(g: torch.Tensor, unit: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
            return (g - unit * (g * unit).sum(-1, keepdim=True)) / norm

        return (
            through_normalize(grad_q_unit, q_unit, q_norm),
            through_normalize(grad_k_unit, k_unit, k_norm),
            grad_v,
            grad_scale,
            grad_bias,
        )


def _explicit(q: Tensor, k: Tensor, v: Tensor, scale: Tensor, bias: Tensor, mask: Tensor | None) -> Tensor:
    attn_bias = bias if mask is None else bias + mask
    return _CosineAttention.apply(q, k, v, scale, attn_bias)


def _scaled_unit_qk(q: Tensor, k: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """Unit q times the per-head scale, unit k: cosine attention as dot-product attention. In q's
    dtype: CUDA autocast takes norms in fp32, and flex needs q, k and v of one dtype."""
    (q_scaled, _), (k_unit, _) = _scaled_unit(q, scale), _scaled_unit(k, 1.0)
    return q_scaled.to(q.dtype), k_unit.to(k.dtype)


def _sdpa(
    q: Tensor, k: Tensor, v: Tensor, scale: Tensor, bias: Tensor, mask: Tensor | None, dropout_p: float
) -> Tensor:
    q, k = _scaled_unit_qk(q, k, scale)
    if mask is not None:
        bias = bias + mask
    if bias.ndim == 3:
        layout, attn_mask = "b w h n d -> (b w) h n d", bias.unsqueeze(0)
    else:
        layout, attn_mask = "b w h n d -> b (w h) n d", rearrange(bias, "w h n m -> 1 (w h) n m")
    q, k, v = (rearrange(t, layout) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=1.0)


# Outside a compiled model, flex compiles one kernel per attention shape (four stages, each batch
# size): more than dynamo's default limit of 8 per function, past which it would silently run
# the unfused reference. Static shapes, since dynamic ones fail to build on CPU here.
FLEX_RECOMPILE_LIMIT = 64


@functools.cache
def _flex_compiled_for_static_shapes():
    # Imported where used: the module pulls in torch._dynamo, ~0.5 s on every start-up otherwise.
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def compiled_flex_attention(q: Tensor, k: Tensor, v: Tensor, score_mod: Callable[..., Tensor]) -> Tensor:
    """``flex_attention(q, k, v, score_mod, scale=1)`` as a fused kernel, compiled per shape."""
    with torch._dynamo.config.patch(recompile_limit=FLEX_RECOMPILE_LIMIT):
        return _flex_compiled_for_static_shapes()(q, k, v, score_mod=score_mod, scale=1.0)


def flex_score_mod(bias: Tensor, mask: Tensor | None) -> Callable[..., Tensor]:
    """The ``score_mod`` of the flex path for q, k, v laid out as ``(B * nW, heads, N, d)``:
    adds ``bias[head, q, k]`` (``bias[window, head, q, k]`` for a per-window bias) and, with a
    mask, ``mask[window, 0, q, k]`` (window = b mod nW)."""

    def score_mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        if bias.ndim == 4:
            score = score + bias[b % bias.shape[0], h, q_idx, kv_idx]
        else:
            score = score + bias[h, q_idx, kv_idx]
        return score if mask is None else score + mask[b % mask.shape[0], 0, q_idx, kv_idx]

    return score_mod


def _flex(q: Tensor, k: Tensor, v: Tensor, scale: Tensor, bias: Tensor, mask: Tensor | None) -> Tensor:
    from torch.nn.attention.flex_attention import flex_attention

    q, k = _scaled_unit_qk(q, k, scale)
    q, k, v = (rearrange(t, "b w h n d -> (b w) h n d") for t in (q, k, v))
    score_mod = flex_score_mod(bias, mask)
    if torch.compiler.is_compiling() or q.device.type == "cpu":
        # Inside a compiled model the graph fuses it; on CPU it only serves inference, where
        # PyTorch's unfused reference is good enough and spares a compile per shape.
        return flex_attention(q, k, v, score_mod=score_mod, scale=1.0)
    return compiled_flex_attention(q, k, v, score_mod)


def resolve_attn_impl(impl: str, device: torch.device, needs_grad: bool, dropout_p: float) -> str:
    """The kernel ``"auto"`` stands for here (see the module docstring); others as given."""
    if impl != "auto":
        return impl
    if dropout_p or device.type != "cpu":
        return "sdpa"
    return "explicit" if needs_grad else "sdpa"


def cosine_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor | None = None,
    impl: str = "auto",
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled cosine attention within windows: q, k, v ``(B, nW, heads, N, d)``; scale ``(heads, 1,
    1)`` (clamped and exponentiated); bias ``(heads, N, N)`` or ``(nW, heads, N, N)`` (e.g. with
    the mask added); mask ``(nW, 1, N, N)`` or None. Returns ``(B * nW, heads, N, d)``."""
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, scale, bias))
    impl = resolve_attn_impl(check_attn_impl(impl), q.device, needs_grad, dropout_p)
    if dropout_p and impl != "sdpa":
        raise ValueError(f"attention dropout needs attn_impl 'sdpa' or 'auto', not {impl!r}")
    if impl == "sdpa":
        out = _sdpa(q, k, v, scale, bias, mask, dropout_p)
    elif impl == "flex":
        out = _flex(q, k, v, scale, bias, mask)
    else:
        out = _explicit(q, k, v, scale, bias, mask)
    return out.reshape(-1, *q.shape[-3:])
