"""3D Swin Transformer V2 for video: the SwinV2 block (scaled cosine attention, residual
post-norm, log-spaced continuous position bias) in 3D shifted windows over (time, height, width),
with timm's 2D ``SwinTransformerV2`` parameter names, so 2D checkpoints map onto it key for key.

The model takes ``(B, C, T, H, W)``; inside, tokens are channels-last ``(B, T, H, W, C)``. The
cyclic shift moves the real tokens, then the grid is padded to window multiples and padded tokens
are masked as keys, so every real token sees its shifted window and region as if unpadded.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import check_attn_impl, cosine_window_attention

Triple = tuple[int, int, int]

# Logit added between tokens that share a window but not a region (SwinV2's convention; the 2D
# checkpoints were trained with it, so it is kept rather than -inf).
MASKED_LOGIT = -100.0
# exp(logit_scale) is clamped at 100 (SwinV2: log(1 / 0.01)).
MAX_LOGIT_SCALE = math.log(100.0)
CPB_HIDDEN = 512
_TO_WINDOWS = "b (nt wt) (nh wh) (nw ww) c -> b (nt nh nw) (wt wh ww) c"
_FROM_WINDOWS = "b (nt nh nw) (wt wh ww) c -> b (nt wt) (nh wh) (nw ww) c"


def to_triple(value: int | Sequence[int], name: str) -> Triple:
    """``8`` -> ``(8, 8, 8)``; a 3-sequence is checked and returned as a tuple."""
    if isinstance(value, int):
        value = (value,) * 3
    value = tuple(int(v) for v in value)
    if len(value) != 3 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or three positive ints (t, h, w), got {value}")
    return value  # type: ignore[return-value]


def effective_window_and_shift(feat_size: Triple, window: Triple, shift: Triple) -> tuple[Triple, Triple]:
    """Per axis: where the feature map is no larger than the window, the window shrinks to the
    feature size and that axis is not shifted."""
    win = tuple(min(f, w) for f, w in zip(feat_size, window))
    sft = tuple(0 if f <= w else s for f, w, s in zip(feat_size, window, shift))
    return win, sft  # type: ignore[return-value]


def relative_coords_table(window: Triple, pretrained_window: Triple) -> torch.Tensor:
    """Log-spaced relative (t, h, w) coordinates of a window, ``((2Wt-1)(2Wh-1)(2Ww-1), 3)``: each
    axis's ``[-(W-1), W-1]`` divided by ``pretrained_W - 1`` (if non-zero, else ``W - 1``, at least
    1), times 8, then ``sign(x) * log2(|x| + 1) / log2(8)``."""
    axes = []
    for w, pw in zip(window, pretrained_window):
        coords = torch.arange(-(w - 1), w, dtype=torch.float32)
        denominator = (pw if pw > 0 else w) - 1
        axes.append(coords / max(denominator, 1))
    table = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3) * 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)


def relative_position_index(window: Triple) -> torch.Tensor:
    """Index into the coordinate table for every (query, key) pair of a window, ``(N, N)``:
    ``dt*(2Wh-1)(2Ww-1) + dh*(2Ww-1) + dw`` with each offset shifted to be >= 0."""
    wt, wh, ww = window
    coords = torch.stack(torch.meshgrid(*(torch.arange(w) for w in window), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + torch.tensor([wt - 1, wh - 1, ww - 1])[:, None, None]
    return rel[0] * (2 * wh - 1) * (2 * ww - 1) + rel[1] * (2 * ww - 1) + rel[2]


def shifted_window_mask(feat_size: Triple, window: Triple, shift: Triple) -> torch.Tensor | None:
    """Additive attention mask for one block, ``(nW, 1, N, N)``, or None when nothing is masked:
    per axis of length L and shift s, ``[0, L-s)``, ``[L-s, L)`` (wrapped) and ``[L, Lp)``
    (padding) are regions, 27 in all, and tokens of a window see only their own region's."""
    padded = [math.ceil(f / w) * w for f, w in zip(feat_size, window)]
    if not any(shift) and padded == list(feat_size):
        return None
    axis_ids = []
    for length, padded_length, s in zip(feat_size, padded, shift):
        ids = torch.zeros(padded_length, dtype=torch.long)
        ids[length - s : length] = 1
        ids[length:] = 2
        axis_ids.append(ids)
    t_ids, h_ids, w_ids = axis_ids
    region = t_ids[:, None, None] * 9 + h_ids[None, :, None] * 3 + w_ids[None, None, :]
    wt, wh, ww = window
    region = rearrange(region[None, ..., None], _TO_WINDOWS, wt=wt, wh=wh, ww=ww)[0, ..., 0]
    mask = region[:, :, None] != region[:, None, :]
    return (mask.float() * MASKED_LOGIT).unsqueeze(1)


class ConstantCache:
    """Tensors that follow from shapes alone (coordinate tables, index maps, masks), built once per
    (function, arguments, device) and shared by a model's blocks; the least recently used go
    past ``max_bytes`` (a 32x224x224 clip's masks reach ~80 MB). Built outside ``inference_mode``
    and autograd (a later training step could not save an inference tensor for backward);
    bypassed inside a compiled graph, where filling it would force a recompile."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._tensors: OrderedDict[tuple, torch.Tensor | None] = OrderedDict()

    def get(self, fn, *args, device: torch.device) -> torch.Tensor | None:
        """``fn(*args)`` on ``device``, from the cache when it is there."""
        if torch.compiler.is_compiling():
            value = fn(*args)
            return None if value is None else value.to(device)
        key = (fn.__name__, args, device)
        if key in self._tensors:
            self._tensors.move_to_end(key)
            return self._tensors[key]
        with torch.inference_mode(False), torch.no_grad():
            value = fn(*args)
            self._tensors[key] = None if value is None else value.to(device)
        while self.nbytes > self.max_bytes and len(self._tensors) > 1:
            self._tensors.popitem(last=False)
        return self._tensors[key]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self._tensors.values() if t is not None)

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in self._tensors.values() if t is not None]

    def clear(self) -> None:
        self._tensors.clear()


class _SummedBias(NamedTuple):
    """A cached position bias + mask and what it was computed from."""

    mask: torch.Tensor | None
    pretrained_window: Triple
    cpb_weights: tuple[torch.Tensor, ...]
    bias: torch.Tensor


class WindowAttention3D(nn.Module):
    """Scaled cosine attention in 3D windows with a continuous (t, h, w) position bias.

    ``logits = cos(q, k) * exp(min(logit_scale, log 100)) + 16 * sigmoid(cpb_mlp(coords)) + mask``;
    ``attn_impl`` picks the kernel (see ``videoswinv2.models.attention``).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        pretrained_window: Triple = (0, 0, 0),
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        attn_impl: str = "auto",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.pretrained_window = pretrained_window
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(3, CPB_HIDDEN, bias=True),
            nn.ReLU(inplace=True),
            nn.Linear(CPB_HIDDEN, num_heads, bias=False),
        )
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.attn_impl = check_attn_impl(attn_impl)
        # (window, dtype, device, autocast) -> summed bias; None while off (see
        # SwinTransformerV2_3D.cache_attention_bias).
        self.bias_cache: dict[tuple, _SummedBias] | None = None
        self.constants = ConstantCache()  # the model's own replaces it (SwinTransformerV2_3D)

    def position_bias(self, window: Triple, device: torch.device) -> torch.Tensor:
        """Continuous position bias of an effective window, ``(heads, N, N)``."""
        table = self.constants.get(relative_coords_table, window, self.pretrained_window, device=device)
        index = self.constants.get(relative_position_index, window, device=device)
        bias = self.cpb_mlp(table.to(self.cpb_mlp[0].weight.dtype))  # ((2Wt-1)(2Wh-1)(2Ww-1), heads)
        bias = bias.index_select(0, index.flatten()).view(*index.shape, self.num_heads)
        return 16 * torch.sigmoid(bias.permute(2, 0, 1))

    def attention_bias(
        self, window: Triple, mask: torch.Tensor | None, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Position bias ``(heads, N, N)`` and mask ``(nW, 1, N, N)`` or None, in ``dtype``, as
        ``cosine_window_attention`` takes them. With the bias cache on and no gradient needed,
        their sum ``(nW, heads, N, N)`` (or the bias alone) and None, computed once per window,
        mask and dtype: the addition is as large as the attention logits."""
        if (
            self.bias_cache is None
            or torch.compiler.is_compiling()
            or (torch.is_grad_enabled() and any(p.requires_grad for p in self.cpb_mlp.parameters()))
        ):
            return self.position_bias(window, device).to(dtype), None if mask is None else mask.to(dtype)
        key = (window, dtype, device, torch.is_autocast_enabled(device.type))
        cached = self.bias_cache.get(key)
        if (
            cached is None
            or cached.mask is not mask
            or cached.pretrained_window != self.pretrained_window
            # The MLP is small (~0.1% of the logits' size): comparing it catches every change of
            # the weights (optimizer steps, load_state_dict, writes through .data).
            or not all(map(torch.equal, cached.cpb_weights, self.cpb_mlp.parameters()))
        ):
            # A plain tensor (not an inference one): later no-grad passes outside inference_mode use it.
            with torch.inference_mode(False), torch.no_grad():
                bias = self.position_bias(window, device).to(dtype)
                # Contiguous: the broadcast sum comes out in a stride order the kernels would copy.
                summed = bias if mask is None else (bias + mask.to(dtype)).contiguous()
                weights = tuple(p.detach().clone() for p in self.cpb_mlp.parameters())
            cached = self.bias_cache[key] = _SummedBias(mask, self.pretrained_window, weights, summed)
        return cached.bias, None

    def forward(self, x: torch.Tensor, window: Triple, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: windows ``(B, nW, N, C)`` with N = Wt*Wh*Ww; ``mask``: ``(nW, 1, N, N)`` or None."""
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias)
        q, k, v = rearrange(qkv, "b w n (three h d) -> three b w h n d", three=3, h=self.num_heads)
        scale = torch.clamp(self.logit_scale, max=MAX_LOGIT_SCALE).exp().to(q.dtype)
        position_bias, mask = self.attention_bias(window, mask, q.dtype, x.device)
        drop = self.attn_drop if self.training else 0.0
        out = cosine_window_attention(q, k, v, scale, position_bias, mask, self.attn_impl, drop)
        out = rearrange(out, "(b w) h n d -> b w n (h d)", b=x.shape[0])
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p``, rescale the rest."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SwinV2Block3D(nn.Module):
    """Residual post-norm block: ``x + drop_path(norm1(attn(x)))``, ``x + drop_path(norm2(mlp(x)))``,
    shifted by half a window on every axis with ``shift`` (odd blocks of a stage)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: Triple,
        shift: bool,
        mlp_ratio: float = 4.0,
        pretrained_window: Triple = (0, 0, 0),
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        extra_norm: bool = False,
        attn_impl: str = "auto",
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size: Triple = tuple(w // 2 for w in window_size) if shift else (0, 0, 0)  # type: ignore[assignment]
        self.attn = WindowAttention3D(dim, num_heads, pretrained_window, attn_drop, proj_drop, attn_impl)
        self.norm1 = nn.LayerNorm(dim)
        self.drop_path1 = DropPath(drop_path)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), proj_drop)
        self.norm2 = nn.LayerNorm(dim)
        self.drop_path2 = DropPath(drop_path)
        # SwinV2's extra main-branch norm, used by its largest models to keep activations bounded.
        self.extra_norm = nn.LayerNorm(dim) if extra_norm else nn.Identity()

    def window_attention(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W, C) -> (B, T, H, W, C)``: shift, pad, attend within windows, undo."""
        feat = tuple(x.shape[1:4])
        window, shift = effective_window_and_shift(feat, self.window_size, self.shift_size)
        if any(shift):
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        pads = [(-f) % w for f, w in zip(feat, window)]
        if any(pads):
            x = F.pad(x, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        wt, wh, ww = window
        nt, nh = x.shape[1] // wt, x.shape[2] // wh
        mask = self.attn.constants.get(shifted_window_mask, feat, window, shift, device=x.device)
        windows = self.attn(rearrange(x, _TO_WINDOWS, wt=wt, wh=wh, ww=ww), window, mask)
        x = rearrange(windows, _FROM_WINDOWS, nt=nt, nh=nh, wt=wt, wh=wh, ww=ww)
        x = x[:, : feat[0], : feat[1], : feat[2]]
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.norm1(self.window_attention(x)))
        x = x + self.drop_path2(self.norm2(self.mlp(x)))
        return self.extra_norm(x)


class PatchMerging3D(nn.Module):
    """Spatial 2x2 merging in SwinV2 order (reduction, then norm): ``(B, T, H, W, C) -> (B, T, H/2,
    W/2, 2C)``, concatenating x0=(0,0), x1=(1,0), x2=(0,1), x3=(1,1) in (h, w); odd H or W padded."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[3] % 2, 0, x.shape[2] % 2))
        x = rearrange(x, "b t (h sh) (w sw) c -> b t h w (sw sh c)", sh=2, sw=2)
        return self.norm(self.reduction(x))


class PatchEmbed3D(nn.Module):
    """Conv3d with kernel = stride = patch, then LayerNorm: ``(B, C, T, H, W) -> (B, T', H', W', D)``
    (T, H and W padded at the end to multiples of the patch)."""

    def __init__(self, patch_size: Triple, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pt, ph, pw = ((-s) % p for s, p in zip(x.shape[2:], self.patch_size))
        if pt or ph or pw:
            x = F.pad(x, (0, pw, 0, ph, 0, pt))
        return self.norm(rearrange(self.proj(x), "b c t h w -> b t h w c"))


class SwinV2Stage3D(nn.Module):
    """Optional spatial patch merging (stages after the first), then ``depth`` blocks."""

    def __init__(
        self,
        dim: int,
        out_dim: int,
        depth: int,
        num_heads: int,
        window_size: Triple,
        downsample: bool,
        mlp_ratio: float,
        pretrained_window: Triple,
        proj_drop: float,
        attn_drop: float,
        drop_path: Sequence[float],
        extra_norm_period: int,
        attn_impl: str,
    ) -> None:
        super().__init__()
        self.downsample = PatchMerging3D(dim) if downsample else nn.Identity()
        self.grad_checkpointing = False
        self.blocks = nn.ModuleList(
            SwinV2Block3D(
                out_dim,
                num_heads,
                window_size,
                shift=j % 2 == 1,
                mlp_ratio=mlp_ratio,
                pretrained_window=pretrained_window,
                proj_drop=proj_drop,
                attn_drop=attn_drop,
                drop_path=drop_path[j],
                extra_norm=extra_norm_period > 0 and (j + 1) % extra_norm_period == 0,
                attn_impl=attn_impl,
            )
            for j in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def _pretrained_window_triples(
    windows: Sequence[int | Sequence[int]] | None, num_stages: int
) -> tuple[Triple, ...]:
    """Per-stage pretrained windows as triples (None: none for every stage). Per stage, 0 is none,
    an int s is spatial (s, s) with no temporal pretrained window, and (t, h, w) is taken as is."""
    if windows is None:
        return ((0, 0, 0),) * num_stages
    if len(windows) != num_stages:
        raise ValueError(
            f"pretrained_window_sizes {tuple(windows)} must have one entry per stage ({num_stages}), "
            "or be None for none"
        )
    triples = [(0, w, w) if isinstance(w, int) else tuple(int(v) for v in w) for w in windows]
    for value in triples:
        if len(value) != 3 or min(value) < 0:
            raise ValueError(
                f"a pretrained window size must be an int or (t, h, w) of ints >= 0, got {value}"
            )
    return tuple(triples)  # type: ignore[return-value]


class SwinTransformerV2_3D(nn.Module):
    """Video Swin Transformer V2: ``(B, C, T, H, W)`` clips to ``(B, num_classes)`` logits."""

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 400,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int | Sequence[int] = (8, 7, 7),
        patch_size: int | Sequence[int] = (2, 4, 4),
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        pretrained_window_sizes: Sequence[int | Sequence[int]] | None = None,
        extra_norm_period: int = 0,
        grad_checkpointing: bool | Sequence[bool] = False,
        attn_impl: str = "auto",
    ) -> None:
        super().__init__()
        depths, num_heads = tuple(depths), tuple(num_heads)
        if len(num_heads) != len(depths):
            raise ValueError(f"depths {depths} and num_heads {num_heads} must have one entry per stage")
        if in_chans < 1 or num_classes < 0 or embed_dim < 1:
            raise ValueError("in_chans, embed_dim must be >= 1 and num_classes >= 0")
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.window_size = to_triple(window_size, "window_size")
        self.patch_size = to_triple(patch_size, "patch_size")
        self.pretrained_window_sizes = _pretrained_window_triples(pretrained_window_sizes, len(depths))
        self.num_features = embed_dim * 2 ** (len(depths) - 1)

        self.patch_embed = PatchEmbed3D(self.patch_size, in_chans, embed_dim)
        num_blocks = sum(depths)
        drop_path = [drop_path_rate * i / max(num_blocks - 1, 1) for i in range(num_blocks)]  # linear
        self.layers = nn.ModuleList(
            SwinV2Stage3D(
                embed_dim * 2 ** max(i - 1, 0),  # the previous stage's width, merged into this one's
                embed_dim * 2**i,
                depth,
                heads,
                self.window_size,
                downsample=i > 0,
                mlp_ratio=mlp_ratio,
                pretrained_window=self.pretrained_window_sizes[i],
                proj_drop=proj_drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=drop_path[sum(depths[:i]) : sum(depths[: i + 1])],
                extra_norm_period=extra_norm_period,
                attn_impl=attn_impl,
            )
            for i, (depth, heads) in enumerate(zip(depths, num_heads))
        )
        self.norm = nn.LayerNorm(self.num_features)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = ClassifierHead(self.num_features, num_classes)
        self.apply(_init_weights)
        for module in self.modules():
            if isinstance(module, SwinV2Block3D):
                # SwinV2 starts every residual branch at zero so each block begins as the identity.
                for norm in (module.norm1, module.norm2):
                    nn.init.zeros_(norm.weight)
                    nn.init.zeros_(norm.bias)
        self.set_grad_checkpointing(grad_checkpointing)
        # Shape-only tensors (tables, masks) of every block, one bounded cache per model.
        self.constants = ConstantCache()
        for attn in self._window_attentions():
            attn.constants = self.constants

    def set_pretrained_window_sizes(
        self, pretrained_window_sizes: Sequence[int | Sequence[int]] | None
    ) -> None:
        """Change the windows the position bias normalises its coordinates by (as the constructor
        takes them). No parameter depends on them, so a built, even trained, model can adopt the
        windows of the checkpoint it loads."""
        windows = _pretrained_window_triples(pretrained_window_sizes, len(self.layers))
        self.pretrained_window_sizes = windows
        for stage, window in zip(self.layers, windows):
            for block in stage.blocks:
                block.attn.pretrained_window = window

    def set_grad_checkpointing(self, enable: bool | Sequence[bool] = True) -> None:
        """Recompute each block's activations in backward (less memory, ~1/3 more time): one flag for
        every stage, or one per stage (``[True, True, False, False]``: the largest two)."""
        flags = [enable] * len(self.layers) if isinstance(enable, bool) else [bool(f) for f in enable]
        if len(flags) != len(self.layers):
            raise ValueError(
                f"grad_checkpointing {list(enable)} must be one bool or one per stage ({len(self.layers)})"
            )
        for stage, flag in zip(self.layers, flags):
            stage.grad_checkpointing = flag

    def cache_attention_bias(self, enable: bool = True) -> None:
        """While on, each block adds its position bias and shifted-window mask once per window,
        dtype and device, and reuses the sum in passes that need no gradient of it: that addition
        is as large as the attention logits (~9% of a bf16 CPU forward, tiny, 32x224). The sums are
        kept (~0.3 GB in bf16 there; off frees them); each block notices weights changed in place
        by comparing its small position-bias MLP with the one the sums came from."""
        for attn in self._window_attentions():
            attn.bias_cache = {} if enable else None

    def set_attn_impl(self, attn_impl: str) -> None:
        """Switch every block's attention kernel (see ``videoswinv2.models.attention``)."""
        check_attn_impl(attn_impl)
        for attn in self._window_attentions():
            attn.attn_impl = attn_impl

    def _window_attentions(self) -> Iterator[WindowAttention3D]:
        return (block.attn for stage in self.layers for block in stage.blocks)

    @torch.jit.ignore
    def no_weight_decay_keywords(self) -> set[str]:
        """Parameter-name fragments that should not be weight-decayed (besides norms and biases)."""
        return {"logit_scale", "cpb_mlp", "q_bias", "v_bias"}

    def input_size_problems(self, clip_size: Sequence[int]) -> list[str]:
        """What a ``(T, H, W)`` clip silently becomes where it does not suit the patch and window:
        padding to one patch, global attention, 1x1 maps. One sentence per problem; ``[]`` if none."""
        fmt = "x".join
        problems = [
            f"the clip's {axis} = {size} is smaller than patch_size {patch} on that axis: it is padded "
            f"with zeros to one patch"
            for axis, size, patch in zip("THW", clip_size, self.patch_size)
            if size < patch
        ]
        t, h, w = (math.ceil(s / p) for s, p in zip(clip_size, self.patch_size))
        stages = [(t, h, w)]
        for _ in self.layers[1:]:
            stages.append((t, math.ceil(stages[-1][1] / 2), math.ceil(stages[-1][2] / 2)))
        sizes = ", ".join(fmt(map(str, s)) for s in stages)
        over = [axis for axis, f, win in zip("THW", stages[0], self.window_size) if win > f]
        if over:
            effective = ", ".join(
                fmt(str(min(f, win)) for f, win in zip(s, self.window_size)) for s in stages
            )
            problems.append(
                f"window_size {fmt(map(str, self.window_size))} exceeds every stage's feature map on "
                f"{', '.join(over)} (stages {sizes} for a {fmt(map(str, clip_size))} clip): the windows "
                f"become {effective}, so attention is global on {', '.join(over)}, not windowed"
            )
        flat = next((i for i, (_, fh, fw) in enumerate(stages[:-1]) if fh == 1 or fw == 1), None)
        if flat is not None:
            problems.append(
                f"a {clip_size[1]}x{clip_size[2]} crop is too small for {len(stages)} stages (feature maps "
                f"{sizes}): from stage {flat + 2} on, patch merging pads a map of size 1 with zeros"
            )
        return problems

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 5:
            raise ValueError(f"expected a clip batch (B, C, T, H, W), got a tensor of shape {tuple(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise ValueError(
                f"expected {self.in_chans} channels in dim 1 of (B, C, T, H, W), got shape {tuple(x.shape)}"
            )
        if 0 in x.shape:
            raise ValueError(f"empty input: shape (B, C, T, H, W) = {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(
                f"expected a floating-point clip, got dtype {x.dtype} (normalise uint8 frames first)"
            )

    def forward_features(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, mask_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, C, T, H, W) -> (B, C', T', H', W')``, after the final LayerNorm. For masked
        modelling (SimMIM), patch embeddings where ``mask`` ``(B, T', H', W')`` is True are
        replaced by ``mask_token`` ``(embed_dim,)``; the rest of the network is unchanged."""
        self._check_input(x)
        x = self.patch_embed(x)
        if mask is not None:
            if mask_token is None or mask.shape != x.shape[:4]:
                raise ValueError(
                    f"a mask needs a mask_token and the token grid's shape {tuple(x.shape[:4])}, "
                    f"got mask {tuple(mask.shape)}"
                )
            x = torch.where(mask.unsqueeze(-1), mask_token.to(x.dtype), x)
        for stage in self.layers:
            x = stage(x)
        return rearrange(self.norm(x), "b t h w c -> b c t h w")

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, C', T', H', W') -> (B, num_classes)``, or the pooled ``(B, C')`` with ``pre_logits``."""
        pooled = self.head_drop(features.mean(dim=(2, 3, 4)))
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = ClassifierHead(self.num_features, num_classes)
        _init_weights(self.head.fc)


class ClassifierHead(nn.Module):
    """The final linear layer, kept under ``head.fc`` as in timm's SwinV2."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
