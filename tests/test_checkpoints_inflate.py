"""Inflating real 2D SwinV2 implementations (timm, transformers, the official layout) into the 3D model.

The 2D models are built from tiny configs with EVERY parameter randomised (SwinV2 starts its
post-norms at zero, which would hide most errors), saved in their own formats, read back and
inflated. On a static clip (one frame repeated) the 3D model must then reproduce the 2D model's
features and logits on that frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from timm.models.swin_transformer_v2 import SwinTransformerV2, checkpoint_filter_fn
from torch import Tensor, nn
from transformers import Swinv2Config, Swinv2ForImageClassification, Swinv2Model

from videoswinv2 import SwinTransformerV2_3D, create_model
from videoswinv2.checkpoints import (
    Checkpoint,
    InflationError,
    inflate_state_dict,
    load_pretrained,
    read_2d_checkpoint,
    to_canonical,
)
from videoswinv2.cli import main
from videoswinv2.commands.inflate import parse_window_sizes

IMG = 64
ARCH = dict(embed_dim=16, depths=(2, 2, 2), num_heads=(2, 2, 4), mlp_ratio=2.0)
WINDOW = 4  # stage grids 16, 8, 4: shifted blocks in stages 0 and 1, two patch mergings
EFFECTIVE_WINDOWS = (4, 4, 4)  # what a checkpoint without pretrained windows normalised by
PRETRAINED = (6, 6, 3)  # windows a checkpoint "was pretrained with", unlike its own
FRAMES = 8  # 4 temporal tokens: temporal windows of 2 with a temporal shift of 1 in odd blocks
NUM_CLASSES = 10
ATOL = 1e-4
IMAGE = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(0))
HEAD = ("head.fc.weight", "head.fc.bias")


def randomise_(module: nn.Module, seed: int) -> nn.Module:
    """Random values for every parameter: norm gains around 1, exp(logit_scale) around 10 (below
    the clamp at 100), weights with unit-variance outputs, small biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("logit_scale"):
                p.copy_(math.log(10) + 0.5 * noise)
            elif p.dim() == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * noise)
            elif p.dim() >= 2:
                p.copy_(noise / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.1 * noise)
    return module.eval()


def timm_2d(
    num_classes: int = NUM_CLASSES, pretrained_window_sizes=(0, 0, 0), seed: int = 0
) -> SwinTransformerV2:
    model = SwinTransformerV2(
        img_size=IMG,
        window_size=WINDOW,
        num_classes=num_classes,
        pretrained_window_sizes=pretrained_window_sizes,
        drop_path_rate=0.0,
        **ARCH,
    )
    return randomise_(model, seed)


def hf_2d(cls: type, pretrained_window_sizes=(0, 0, 0), seed: int = 1, **config) -> nn.Module:
    config = Swinv2Config(
        image_size=IMG,
        patch_size=4,
        embed_dim=ARCH["embed_dim"],
        depths=list(ARCH["depths"]),
        num_heads=list(ARCH["num_heads"]),
        window_size=WINDOW,
        mlp_ratio=ARCH["mlp_ratio"],
        pretrained_window_sizes=list(pretrained_window_sizes),
        drop_path_rate=0.0,
        num_labels=NUM_CLASSES,
        **config,
    )
    return randomise_(cls(config), seed)


def official_state_dict(model: SwinTransformerV2) -> dict[str, Tensor]:
    """timm's SwinV2 in microsoft/Swin-Transformer's layout: each downsample moves to the END of
    the previous stage, ``head.fc`` becomes ``head``, and the buffers are stored (timm keeps them
    non-persistent; the official code does not)."""
    state_dict = {}
    for key, value in model.state_dict().items():
        key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m[1]) - 1}.downsample", key)
        state_dict[key.replace("head.fc.", "head.")] = value
    for name, buffer in model.named_buffers():
        if name.endswith(("relative_coords_table", "relative_position_index", "attn_mask")):
            state_dict[name] = buffer
    return state_dict


def model_3d(pretrained_window_sizes, num_classes: int = NUM_CLASSES, **overrides) -> SwinTransformerV2_3D:
    kwargs = dict(
        window_size=(2, WINDOW, WINDOW),
        patch_size=(2, 4, 4),
        num_classes=num_classes,
        pretrained_window_sizes=pretrained_window_sizes,
        drop_path_rate=0.0,
        **ARCH,
    )
    return SwinTransformerV2_3D(**{**kwargs, **overrides}).eval()


def static_clip(image: Tensor) -> Tensor:
    return image.unsqueeze(2).repeat(1, 1, FRAMES, 1, 1)


@dataclass
class Saved2D:
    path: Path
    layout: str
    windows: tuple | None  # the pretrained windows the file shows
    features: Tensor  # the 2D model's final features on IMAGE, (B, H', W', C)
    logits: Tensor | None


def save_2d(kind: str, folder: Path) -> Saved2D:
    """A randomised 2D model saved the way ``kind`` is distributed, with its outputs on IMAGE."""
    windows = PRETRAINED if kind.endswith("pretrained-windows") else (0, 0, 0)
    shown = PRETRAINED if kind.endswith("pretrained-windows") else EFFECTIVE_WINDOWS
    if kind.startswith("hf"):
        headless = kind == "hf-model-bin"
        model = hf_2d(Swinv2Model if headless else Swinv2ForImageClassification, windows)
        if headless:  # the pre-safetensors format: pytorch_model.bin beside config.json
            torch.save(model.state_dict(), folder / "pytorch_model.bin")
            model.config.save_pretrained(folder)
        else:
            model.save_pretrained(folder)
        with torch.no_grad():
            backbone = model if headless else model.swinv2
            features = backbone(IMAGE).last_hidden_state.unflatten(1, (IMG // 16, IMG // 16))
            logits = None if headless else model(IMAGE).logits
        return Saved2D(folder, "hf", shown, features, logits)

    headless = kind == "simmim"
    model = timm_2d(num_classes=0 if headless else NUM_CLASSES, pretrained_window_sizes=windows)
    with torch.no_grad():
        features = model.forward_features(IMAGE)
        logits = None if headless else model(IMAGE)
    if kind == "timm-pth":
        torch.save(model.state_dict(), path := folder / "timm.pth")
        return Saved2D(path, "timm", None, features, logits)
    if kind == "timm-safetensors":
        save_file(model.state_dict(), path := folder / "model.safetensors")
        return Saved2D(path, "timm", None, features, logits)
    official = official_state_dict(model)
    if kind == "official-ddp":
        wrapped = {"state_dict": {f"module.{k}": v for k, v in official.items()}, "epoch": 30}
        torch.save(wrapped, path := folder / "ddp.pt")
        return Saved2D(path, "official", shown, features, logits)
    if kind == "simmim":
        encoder = {f"encoder.{k}": v for k, v in official.items()}
        encoder["encoder.mask_token"] = torch.randn(1, 1, ARCH["embed_dim"])
        decoder = {
            "decoder.0.weight": torch.randn(3 * 32**2, 64, 1, 1),
            "decoder.0.bias": torch.randn(3 * 32**2),
        }
        torch.save({"model": encoder | decoder}, path := folder / "simmim.pth")
        return Saved2D(path, "simmim", shown, features, logits)
    torch.save({"model": official}, path := folder / "official.pth")
    return Saved2D(path, "official", shown, features, logits)


KINDS = [
    "timm-pth",
    "timm-safetensors",
    "official",
    "official-pretrained-windows",
    "official-ddp",
    "simmim",
    "hf-classifier",
    "hf-classifier-pretrained-windows",
    "hf-model-bin",
]


def max_difference(saved: Saved2D, temporal_init: str = "average") -> float:
    """Read, inflate with the windows the file shows, run a static clip; the largest deviation from 2D."""
    ckpt = read_2d_checkpoint(saved.path)
    model = model_3d(ckpt.pretrained_window_sizes or (0, 0, 0), num_classes=ckpt.num_classes or 0)
    load_pretrained(model, ckpt, temporal_init=temporal_init)
    with torch.no_grad():
        features = model.forward_features(static_clip(IMAGE))  # (B, C, T', H', W')
        logits = model.forward_head(features)
    assert features.shape[2] == FRAMES // 2
    diffs = [
        (features[:, :, t].permute(0, 2, 3, 1) - saved.features).abs().max() for t in range(features.shape[2])
    ]
    if saved.logits is not None:
        diffs.append((logits - saved.logits).abs().max())
    return max(diffs).item()


@pytest.mark.parametrize("kind", KINDS)
def test_static_clip_reproduces_the_2d_model(kind, tmp_path):
    saved = save_2d(kind, tmp_path)
    ckpt = read_2d_checkpoint(saved.path)
    assert (ckpt.layout, ckpt.pretrained_window_sizes) == (saved.layout, saved.windows)
    assert (ckpt.embed_dim, ckpt.depths, ckpt.num_heads) == (
        ARCH["embed_dim"],
        ARCH["depths"],
        ARCH["num_heads"],
    )
    assert ckpt.num_classes == (None if saved.logits is None else NUM_CLASSES)
    assert max_difference(saved) < ATOL


def test_center_init_is_exact_on_static_clips_too(tmp_path):
    saved = save_2d("timm-pth", tmp_path)
    assert max_difference(saved, "center") < ATOL
    model = model_3d((0, 0, 0))
    load_pretrained(model, saved.path, temporal_init="center")
    kernel = model.patch_embed.proj.weight  # (C, in, pt, ph, pw), pt = 2: all weight on frame 1
    assert kernel[:, :, 0].abs().max() == 0
    assert torch.equal(kernel[:, :, 1], torch.load(saved.path)["patch_embed.proj.weight"])


def test_pretrained_windows_matter(tmp_path, caplog):
    """Without the windows the checkpoint was trained with, the position bias is evaluated at other
    coordinates and the 3D model no longer matches: the inference above is what makes it exact."""
    saved = save_2d("official-pretrained-windows", tmp_path)
    model = model_3d((0, 0, 0))
    with caplog.at_level(logging.WARNING, logger="videoswinv2.checkpoints.inflate"):
        load_pretrained(model, saved.path)
    assert "was trained with ((6, 6), (6, 6), (3, 3)): pass pretrained_window_sizes=(6, 6, 3)" in caplog.text
    with torch.no_grad():
        features = model.forward_features(static_clip(IMAGE))[:, :, 0].permute(0, 2, 3, 1)
    assert (features - saved.features).abs().max() > 1e-2


def test_window_inference_from_stored_tables_and_hf_configs(caplog):
    # Stage grids 8, 4, 2, 1 under a window of 4: windows 4, 4, 2 and one of size 1, which shows nothing.
    model = SwinTransformerV2(
        img_size=32, embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=4
    )
    official = official_state_dict(model)
    assert Checkpoint.from_state_dict(official).pretrained_window_sizes == (4, 4, 2, 0)
    # The official code divides 0 by 0 for a window of one.
    official["layers.3.blocks.0.attn.relative_coords_table"] = torch.full((1, 1, 1, 2), math.nan)
    assert Checkpoint.from_state_dict(official).pretrained_window_sizes == (4, 4, 2, 0)

    # A 12to16-style checkpoint (window 16, pretrained with 12, 12, 12, 6), stored in half precision.
    fine_tuned = SwinTransformerV2(
        img_size=64,
        embed_dim=8,
        depths=(1, 1, 1, 1),
        num_heads=(1, 1, 1, 1),
        window_size=16,
        pretrained_window_sizes=(12, 12, 12, 6),
    )
    half = {k: v.half() for k, v in official_state_dict(fine_tuned).items()}
    assert Checkpoint.from_state_dict(half).pretrained_window_sizes == (12, 12, 12, 6)

    config = dict(model_type="swinv2", depths=[1, 1, 1, 1], image_size=32, patch_size=4, window_size=4)
    timm_sd = model.state_dict()
    assert Checkpoint.from_state_dict(timm_sd, hf_config=config).pretrained_window_sizes == (4, 4, 2, 0)
    config["pretrained_window_sizes"] = [12, 12, 12, 6]
    assert Checkpoint.from_state_dict(timm_sd, hf_config=config).pretrained_window_sizes == (12, 12, 12, 6)
    assert (
        Checkpoint.from_state_dict(timm_sd, hf_config=config | {"depths": [2, 2]}).pretrained_window_sizes
        is None
    )

    official["layers.1.blocks.0.attn.relative_coords_table"] = torch.rand(1, 7, 7, 2) + 0.1
    with caplog.at_level(logging.WARNING, logger="videoswinv2.checkpoints.architecture"):
        assert Checkpoint.from_state_dict(official).pretrained_window_sizes is None
    assert "stage 1's relative_coords_table (1, 7, 7, 2) does not follow SwinV2's formula" in caplog.text


def test_all_layouts_canonicalise_to_timm_names(tmp_path):
    model = timm_2d()
    timm_sd = model.state_dict()
    official = official_state_dict(model)
    # timm's own converter agrees that official_state_dict is the official layout.
    assert {k: v for k, v in checkpoint_filter_fn(official, model).items()}.keys() == timm_sd.keys()
    simmim = {f"encoder.{k}": v for k, v in official.items() if not k.startswith("head.")}
    simmim["encoder.mask_token"] = torch.zeros(1)
    for state_dict, layout in ((timm_sd, "timm"), (official, "official"), (simmim, "simmim")):
        canonical = to_canonical(state_dict)
        assert canonical.layout == layout
        expected = {k: v for k, v in timm_sd.items() if layout != "simmim" or not k.startswith("head.")}
        assert canonical.state_dict.keys() == expected.keys()
        assert all(torch.equal(canonical.state_dict[k], v) for k, v in expected.items())
    hf = hf_2d(Swinv2ForImageClassification).state_dict()
    canonical = to_canonical(hf)
    assert canonical.layout == "hf"
    assert canonical.state_dict.keys() == timm_sd.keys()
    qkv = canonical.state_dict["layers.1.blocks.1.attn.qkv.weight"]
    prefix = "swinv2.encoder.layers.1.blocks.1.attention.self"
    assert torch.equal(qkv, torch.cat([hf[f"{prefix}.{p}.weight"] for p in ("query", "key", "value")]))
    reduction = hf["swinv2.encoder.layers.1.downsample.reduction.weight"]  # end of stage 1 = start of stage 2
    assert torch.equal(canonical.state_dict["layers.2.downsample.reduction.weight"], reduction)


def test_report_lists_what_happened_to_every_tensor(tmp_path, caplog):
    saved = save_2d("official", tmp_path)
    model = model_3d(EFFECTIVE_WINDOWS, num_classes=7)
    initial_head = model.head.fc.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="videoswinv2.checkpoints.inflate"):
        report = load_pretrained(model, saved.path)
    cpb = {f"layers.{i}.blocks.{j}.attn.cpb_mlp.0.weight" for i in range(3) for j in range(2)}
    assert set(report.inflated) == cpb | {"patch_embed.proj.weight"}
    assert report.reinitialised == dict.fromkeys(HEAD, "class count differs: checkpoint 10, model 7")
    buffer_names = ("relative_coords_table", "relative_position_index", "attn_mask")
    buffers = {k for k in torch.load(saved.path)["model"] if k.endswith(buffer_names)}
    assert set(report.dropped) == buffers and len(buffers) == 6 + 6 + 2  # attn_mask: block 1 of stages 0, 1
    assert len(report.copied) + len(report.inflated) + len(report.reinitialised) == len(model.state_dict())
    assert torch.equal(model.head.fc.weight, initial_head)
    cpb_line = (
        "layers.*.blocks.*.attn.cpb_mlp.0.weight (6): (512, 2) -> (512, 3), zero column for t prepended"
    )
    assert cpb_line in caplog.text
    assert "re-initialised in the model: 2 tensors" in caplog.text


def test_extra_norms_and_missing_classifier_are_reinitialised(tmp_path):
    ckpt = Checkpoint.from_state_dict(timm_2d(num_classes=0).state_dict())
    model = model_3d((0, 0, 0), extra_norm_period=1)
    _, report = inflate_state_dict(ckpt, model.state_dict())
    extra = {
        f"layers.{i}.blocks.{j}.extra_norm.{p}"
        for i in range(3)
        for j in range(2)
        for p in ("weight", "bias")
    }
    assert set(report.reinitialised) == extra | set(HEAD)
    assert report.reinitialised["head.fc.weight"] == "the checkpoint has no classifier"


def test_classifier_is_dropped_for_a_headless_model():
    ckpt = Checkpoint.from_state_dict(timm_2d().state_dict())
    _, report = inflate_state_dict(ckpt, model_3d((0, 0, 0), num_classes=0).state_dict())
    assert report.dropped == dict.fromkeys(HEAD, "the model has no classifier (num_classes=0)")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            dict(embed_dim=24),
            [
                "-> the checkpoint fits create_model('videoswinv2_tiny', embed_dim=16, depths=(2, 2, 2), "
                "num_heads=(2, 2, 4), mlp_ratio=2.0)",
                "layers.0.blocks.0.attn.qkv.weight: checkpoint (48, 16), model (72, 24); dim 0: 48 vs 72; dim 1: 16 vs 24",
            ],
        ),
        (
            dict(num_heads=(2, 2, 2)),
            [
                "layers.2.blocks.0.attn.logit_scale: checkpoint (4, 1, 1), model (2, 1, 1); dim 0: 4 vs 2 (number of heads",
            ],
        ),
        (
            dict(depths=(2, 2, 3)),
            ["missing from the checkpoint (17):\n    layers.2.blocks.2.attn.logit_scale"],
        ),
        (
            dict(in_chans=1),
            [
                "patch_embed.proj.weight: checkpoint (16, 3, 4, 4), model (16, 1, 2, 4, 4); dim 1: 3 vs 1 (input channels)",
            ],
        ),
        (dict(patch_size=(2, 2, 2)), ["dim 2: 4 vs 2 (patch size); dim 3: 4 vs 2 (patch size)"]),
        (
            dict(mlp_ratio=4.0),
            [
                "layers.0.blocks.0.mlp.fc1.weight: checkpoint (32, 16), model (64, 16); dim 0: 32 vs 64 (MLP hidden width",
            ],
        ),
    ],
    ids=["embed_dim", "heads", "depths", "in_chans", "patch", "mlp_ratio"],
)
def test_mismatches_name_keys_and_dimensions(overrides, expected):
    ckpt = Checkpoint.from_state_dict(timm_2d().state_dict(), source="tiny.pth")
    with pytest.raises(InflationError) as err:
        inflate_state_dict(ckpt, model_3d((0, 0, 0), **overrides).state_dict())
    message = str(err.value)
    assert message.startswith("cannot inflate tiny.pth (timm layout) into this model:")
    for fragment in expected:
        assert fragment in message


def test_unknown_and_missing_keys_are_named(tmp_path):
    hf = hf_2d(Swinv2Model, use_absolute_embeddings=True).state_dict()
    hf.pop("layernorm.bias")
    with pytest.raises(InflationError) as err:
        inflate_state_dict(Checkpoint.from_state_dict(hf), model_3d((0, 0, 0), num_classes=0).state_dict())
    assert "missing from the checkpoint (1):\n    norm.bias" in str(err.value)
    assert "in the checkpoint, not in the model (1):\n    embeddings.position_embeddings" in str(err.value)


def test_inflated_model_trains_its_temporal_parameters():
    model = model_3d((0, 0, 0)).train()
    load_pretrained(model, Checkpoint.from_state_dict(timm_2d().state_dict()))
    clip = torch.randn(2, 3, FRAMES, IMG, IMG, generator=torch.Generator().manual_seed(1))
    F.cross_entropy(model(clip), torch.tensor([1, 2])).backward()
    kernel_grad = model.patch_embed.proj.weight.grad  # (C, in, pt, ph, pw)
    assert all(kernel_grad[:, :, t].abs().sum() > 0 for t in range(2))
    assert not torch.allclose(kernel_grad[:, :, 0], kernel_grad[:, :, 1])
    for name, param in model.named_parameters():
        if name.endswith("cpb_mlp.0.weight"):
            assert param.grad[:, 0].abs().sum() > 0, name  # the temporal column


@pytest.fixture(scope="module")
def tiny_official(tmp_path_factory) -> Path:
    """A 2D SwinV2-T in the official layout, pretrained with windows 12, 12, 12, 6 (like the 12to16 checkpoints)."""
    model = SwinTransformerV2(img_size=64, window_size=8, pretrained_window_sizes=(12, 12, 12, 6))
    path = tmp_path_factory.mktemp("tiny") / "swinv2_tiny.pth"
    torch.save({"model": official_state_dict(model)}, path)
    return path


def inflate_cli(*argv: str) -> int:
    return main(["inflate", *argv])


def test_cli_writes_a_strict_state_dict_with_the_checkpoint_windows(tiny_official, tmp_path, capsys):
    dst = tmp_path / "video.safetensors"
    assert inflate_cli(str(tiny_official), str(dst), "--model", "videoswinv2_tiny", "--num-classes", "7") == 0
    out = capsys.readouterr().out
    assert "pretrained window sizes: (12, 12, 12, 6) (shown by the checkpoint)" in out
    assert "re-initialised in the model: 2 tensors" in out
    model = create_model("videoswinv2_tiny", num_classes=7, pretrained_window_sizes=(12, 12, 12, 6))
    model.load_state_dict(load_file(dst), strict=True)
    with safe_open(dst, "pt") as f:
        assert f.metadata()["pretrained_window_sizes"] == "[12, 12, 12, 6]"
    reference = create_model("videoswinv2_tiny", num_classes=7, pretrained=tiny_official)
    for key, value in reference.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(model.state_dict()[key], value), key


def test_cli_window_flag_overrides_and_pth_output(tiny_official, tmp_path, capsys):
    dst = tmp_path / "video.pth"
    args = (str(tiny_official), str(dst), "--model", "videoswinv2_tiny", "--temporal-init", "center")
    assert inflate_cli(*args, "--pretrained-window-sizes", "0x12x12,12,12,6") == 0
    assert (
        "pretrained window sizes: ((0, 12, 12), 12, 12, 6) (given on the command line)"
        in capsys.readouterr().out
    )
    model = create_model("videoswinv2_tiny", pretrained_window_sizes=((0, 12, 12), 12, 12, 6))
    model.load_state_dict(torch.load(dst, weights_only=True), strict=True)
    assert model.patch_embed.proj.weight[:, :, 0].abs().max() == 0  # centre of a 2-frame kernel is frame 1


def test_cli_errors_are_one_line_with_exit_2_and_write_nothing(tiny_official, tmp_path, capsys):
    def error(*argv: str) -> str:
        assert inflate_cli(*argv) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("videoswinv2 inflate: error: "), lines
        return lines[0]

    src, out = str(tiny_official), str(tmp_path / "o.pth")
    assert "absent.pth: no such checkpoint file or folder" in error(
        str(tmp_path / "absent.pth"), out, "--model", "videoswinv2_tiny"
    )
    windows = ("--pretrained-window-sizes", "8,8")
    assert "--pretrained-window-sizes has 2 entries; the checkpoint has 4 stages" in error(
        src, out, "--model", "videoswinv2_tiny", *windows
    )
    assert "unknown model 'videoswinv2_huge'" in error(src, out, "--model", "videoswinv2_huge")
    missing = tmp_path / "missing" / "o.safetensors"
    assert error(src, str(missing), "--model", "videoswinv2_tiny").endswith(
        f"cannot write {missing}: the folder {tmp_path / 'missing'} does not exist"
    )
    assert error(src, str(tmp_path), "--model", "videoswinv2_tiny").endswith(
        f"{tmp_path} is a folder: name the output file, e.g. {tmp_path / 'model.safetensors'}"
    )
    assert not any(tmp_path.iterdir())


def test_cli_never_replaces_the_source_or_an_existing_file_without_overwrite(tiny_official, tmp_path, capsys):
    source = tiny_official.read_bytes()
    assert inflate_cli(str(tiny_official), str(tiny_official), "--model", "videoswinv2_tiny") == 2
    assert "is the checkpoint to inflate: choose another output file" in capsys.readouterr().err
    assert tiny_official.read_bytes() == source
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"the user's own file")
    assert inflate_cli(str(tiny_official), str(mine), "--model", "videoswinv2_tiny") == 2
    assert f"{mine} exists: pass --overwrite to replace it" in capsys.readouterr().err
    assert mine.read_bytes() == b"the user's own file"
    assert inflate_cli(str(tiny_official), str(mine), "--model", "videoswinv2_tiny", "--overwrite") == 0
    assert load_file(mine)  # replaced by a whole state dict
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.safetensors"]  # no partial file left


def test_cli_mismatch_names_the_variant_or_the_overrides_that_fit(tmp_path, capsys):
    timm_path = tmp_path / "timm.pth"
    torch.save(timm_2d().state_dict(), timm_path)
    assert inflate_cli(str(timm_path), str(tmp_path / "o.pth"), "--model", "videoswinv2_base") == 2
    (line,) = capsys.readouterr().err.splitlines()
    flags = "--model videoswinv2_tiny --embed-dim 16 --depths 2,2,2 --num-heads 2,2,4 --mlp-ratio 2"
    assert line.endswith(f"which videoswinv2_base does not have: use {flags}"), line
    dst = tmp_path / "video.safetensors"
    assert inflate_cli(str(timm_path), str(dst), *flags.split(), "--num-classes", str(NUM_CLASSES)) == 0
    assert "create_model('videoswinv2_tiny', num_classes=10, embed_dim=16" in capsys.readouterr().out
    with safe_open(dst, "pt") as f:
        assert json.loads(f.metadata()["model_kwargs"]) == {
            "embed_dim": 16,
            "depths": [2, 2, 2],
            "num_heads": [2, 2, 4],
            "mlp_ratio": 2.0,
        }
    # predict and extract-features rebuild the model from the header alone.
    from videoswinv2.inference.loading import load_model

    loaded = load_model(dst, need_head=False)
    assert (
        loaded.module.backbone.patch_embed.proj.out_channels == 16
        and loaded.module.hparams.num_classes == NUM_CLASSES
    )


def test_parse_window_sizes():
    assert parse_window_sizes("12,12,12,6") == (12, 12, 12, 6)
    assert parse_window_sizes("2x12x12, 0") == ((2, 12, 12), 0)
    for bad in ("12,a", "2x12", "-1", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_window_sizes(bad)
