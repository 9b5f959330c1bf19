"""``MaskedVideoPretraining``: SimMIM carried to video, on unlabelled clips.

Masked units of the clip (boxes aligned with the last stage's tokens) have their patch embeddings
replaced by a learnable mask token; a light decoder reconstructs the clip, with an L1 loss to
per-patch normalised pixels on masked voxels only. The backbone is the classifier's own
(``backbone.*`` keys), so a checkpoint starts fine-tuning through ``VideoClassifier(pretrained=...)``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import torch
from einops import rearrange
from torch import nn

from videoswinv2.data.geometry import ClipGeometry
from videoswinv2.errors import UsageError
from videoswinv2.models import create_model
from videoswinv2.record import PRETRAINING_KEY

from .backbone import BackboneModule
from .masking import (
    PATCH_NORM_EPS,
    MaskKind,
    check_mask,
    expand_mask,
    mask_cells,
    masked_l1,
    normalize_patches,
    patch_statistics,
    random_unit_mask,
)
from .optim import learning_rates, param_groups

Triple = tuple[int, int, int]


class PixelShuffleDecoder3D(nn.Module):
    """SimMIM's decoder in 3D: a 1x1x1 convolution predicts, for every last-stage token, the
    pixels of the ``stride`` box it covers, and a pixel shuffle puts them in place:
    ``(B, D, T', H', W') -> (B, C, T' * st, H' * sh, W' * sw)``."""

    def __init__(self, in_features: int, stride: Triple, out_chans: int = 3) -> None:
        super().__init__()
        self.stride = stride
        self.proj = nn.Conv3d(in_features, out_chans * math.prod(stride), kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        st, sh, sw = self.stride
        pixels = self.proj(features)
        return rearrange(pixels, "b (c st sh sw) t h w -> b c (t st) (h sh) (w sw)", st=st, sh=sh, sw=sw)


class Reconstruction(NamedTuple):
    """One masked forward pass: the loss, the prediction ``(B, C, T, H, W)`` in the target's
    space, the target, and which voxels were masked ``(B, T, H, W)``."""

    loss: torch.Tensor
    prediction: torch.Tensor
    target: torch.Tensor
    voxel_mask: torch.Tensor


class MaskedVideoPretraining(BackboneModule):
    """Masked video modelling (SimMIM) for the 3D SwinV2 backbone.

    Batches are dicts from ``videoswinv2.data`` with ``video`` ``(B, C, T, H, W)``; labels, if
    any, are ignored. T, H and W must be multiples of the mask unit.

    ``model``, ``model_kwargs``, ``drop_path_rate``, ``temporal_init``, ``compile`` and
    ``clip_geometry`` are as ``VideoClassifier``'s.

    Args:
        pretrained: weights to start from, as ``VideoClassifier``'s; the mask token and the
            decoder always start fresh.
        mask_kind: ``cube`` (units masked at random in space and time) or ``tube`` (the same
            spatial units masked in every frame).
        mask_ratio: fraction of the units masked in every clip (of the spatial units for tubes).
        mask_unit: ``(t, h, w)`` pixels of one mask unit, multiples of the last stage's stride
            (patch size x 2 ** (stages - 1) spatially, the default).
        normalize_target: normalise each channel of each last-stage box of the target to zero
            mean and unit variance (MAE / VideoMAE), so that structure, not brightness, is learnt.
        lr: peak learning rate.
        warmup_epochs: linear warmup length; then cosine decay, stepped every optimiser step.
    """

    def __init__(
        self,
        model: str = "videoswinv2_tiny",
        model_kwargs: dict[str, Any] | None = None,
        drop_path_rate: float = 0.1,
        pretrained: str | None = None,
        temporal_init: Literal["average", "center"] = "average",
        mask_kind: MaskKind = "cube",
        mask_ratio: float = 0.6,
        mask_unit: tuple[int, int, int] | None = None,
        normalize_target: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_epochs: float = 2.5,
        min_lr_ratio: float = 0.0,
        compile: bool = False,
        clip_geometry: ClipGeometry | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore="clip_geometry")
        check_mask(mask_kind, mask_ratio)
        # No classifier: the state dict is the classifier's backbone without `head.fc`.
        kwargs = {"drop_path_rate": drop_path_rate, **(model_kwargs or {})}
        self._compose(create_model(model, num_classes=0, **kwargs), clip_geometry)
        patch = self.backbone.patch_size
        scale = 2 ** (len(self.backbone.layers) - 1)  # spatial patch merging per stage
        self.stride: Triple = (patch[0], patch[1] * scale, patch[2] * scale)
        self.mask_unit: Triple = tuple(mask_unit) if mask_unit is not None else self.stride  # type: ignore[assignment]
        if len(self.mask_unit) != 3 or any(u < s or u % s for u, s in zip(self.mask_unit, self.stride)):
            raise ValueError(
                f"mask_unit {list(self.mask_unit)} must be (t, h, w) multiples of the last stage's stride "
                f"{list(self.stride)}, so that each last-stage token is wholly masked or wholly visible"
            )
        embed_dim = self.backbone.patch_embed.proj.out_channels
        self.mask_token = nn.Parameter(torch.zeros(embed_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.decoder = PixelShuffleDecoder3D(self.backbone.num_features, self.stride, self.backbone.in_chans)

    def unit_grid(self, clip_size: tuple[int, ...]) -> Triple:
        """Mask units along ``(T, H, W)`` of a clip; a clip that does not divide into units is an error."""
        if any(s % u for s, u in zip(clip_size, self.mask_unit)):
            raise UsageError(
                f"a {'x'.join(map(str, clip_size))} clip (frames x height x width) does not divide into "
                f"mask units of {'x'.join(map(str, self.mask_unit))}: choose num_frames and crop sizes "
                "that are multiples of them (or another mask_unit)"
            )
        return tuple(s // u for s, u in zip(clip_size, self.mask_unit))  # type: ignore[return-value]

    def random_mask(self, clips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A fresh unit mask for ``(B, C, T, H, W)`` clips: ``(B, t, h, w)`` bool, True where masked."""
        grid = self.unit_grid(tuple(clips.shape[2:]))
        hp = self.hparams
        device = clips.device if generator is None else generator.device
        mask = random_unit_mask(
            len(clips), grid, hp.mask_ratio, hp.mask_kind, device=device, generator=generator
        )
        return mask.to(clips.device)

    def reconstruct(self, clips: torch.Tensor, unit_mask: torch.Tensor) -> Reconstruction:
        """Mask ``clips`` ``(B, C, T, H, W)`` by ``unit_mask`` ``(B, t, h, w)`` and reconstruct them."""
        patch = self.backbone.patch_size
        token_mask = expand_mask(unit_mask, tuple(u // p for u, p in zip(self.mask_unit, patch)))
        features = self.backbone.forward_features(clips, token_mask, self.mask_token)
        prediction = self.decoder(features).float()
        target = clips.float()
        if self.hparams.normalize_target:
            target = normalize_patches(target, self.stride)
        voxel_mask = expand_mask(unit_mask, self.mask_unit)
        return Reconstruction(masked_l1(prediction, target, voxel_mask), prediction, target, voxel_mask)

    def prediction_as_clip(self, clips: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """The prediction in the clips' own (normalised-pixel) space: the per-patch normalisation
        of the target undone with the original clip's statistics (as MAE shows reconstructions)."""
        if not self.hparams.normalize_target:
            return prediction
        mean, std = patch_statistics(clips.float(), self.stride)
        return prediction * (std + PATCH_NORM_EPS) + mean

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        clips = batch["video"]
        loss = self.reconstruct(clips, self.random_mask(clips)).loss
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(clips))
        self.log_dict(learning_rates(self.trainer.optimizers[0].param_groups), on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        clips = batch["video"]
        if len(clips) == 0:  # every video of the batch failed to decode
            return
        # The same masks every epoch, so that the validation curve compares like with like.
        generator = torch.Generator().manual_seed(batch_idx)
        loss = self.reconstruct(clips, self.random_mask(clips, generator)).loss
        self.log("val/loss", loss, prog_bar=True, batch_size=len(clips))

    def optimizer_groups(self) -> list[dict[str, Any]]:
        hp = self.hparams
        # The decoder plays the head's part; the mask token (1-D) is not weight-decayed (SimMIM).
        return param_groups(self, lr=hp.lr, weight_decay=hp.weight_decay, head_prefix="decoder.")

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # Checked before the first step: a clip that does not divide into units, or too few of
        # them to mask, would stop there.
        for size in filter(None, map(self.clip_size, ("train", "val"))):
            mask_cells(self.unit_grid(size), self.hparams.mask_kind)

    # `videoswinv2 extract-features` runs BackboneModule.predict_step: the encoder, unmasked.

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[PRETRAINING_KEY] = {"mask_kind": self.hparams.mask_kind}
