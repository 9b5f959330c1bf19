"""Reading checkpoint files: formats, wrappers, Hugging Face folders, and clear errors for bad files."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from timm.models.swin_transformer import SwinTransformer
from timm.models.swin_transformer_v2 import SwinTransformerV2
from timm.models.swin_transformer_v2_cr import SwinTransformerV2Cr
from timm.models.vision_transformer import VisionTransformer

from videoswinv2 import SwinTransformerV2_3D
from videoswinv2.checkpoints import CheckpointError, read_2d_checkpoint, read_raw_checkpoint, save_state_dict


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    """A tiny timm SwinV2 (two stages, one block each) with a 3-class head."""
    model = SwinTransformerV2(
        img_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4, num_classes=3
    )
    return model.state_dict()


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".safetensors"])
def test_reads_each_file_format(state_dict, tmp_path, suffix):
    path = tmp_path / f"ckpt{suffix}"
    if suffix == ".safetensors":
        save_file(state_dict, path)
    else:
        torch.save(state_dict, path)
    assert_same_tensors(read_raw_checkpoint(path).tensors, state_dict)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"model": sd},  # official Swin training scripts
        lambda sd: {"state_dict": sd, "epoch": 3, "max_accuracy": 81.2},  # Lightning and others
        lambda sd: {"module": sd},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},  # DistributedDataParallel
        lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 1},
    ],
    ids=["model", "state_dict", "module", "module-prefix", "model+module-prefix"],
)
def test_unwraps_wrappers(state_dict, tmp_path, wrap):
    torch.save(wrap(state_dict), tmp_path / "wrapped.pth")
    assert_same_tensors(read_raw_checkpoint(tmp_path / "wrapped.pth").tensors, state_dict)


def test_reads_hugging_face_folders(state_dict, tmp_path):
    config = {"model_type": "swinv2", "window_size": 4}
    single = tmp_path / "single"
    single.mkdir()
    save_file(state_dict, single / "model.safetensors")
    (single / "config.json").write_text(json.dumps(config))
    raw = read_raw_checkpoint(single)
    assert_same_tensors(raw.tensors, state_dict)
    assert raw.config == config
    # The weight file alone, inside its snapshot folder, still finds its config.
    assert read_raw_checkpoint(single / "model.safetensors").config == config

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    torch.save(state_dict, legacy / "pytorch_model.bin")
    assert_same_tensors(read_raw_checkpoint(legacy).tensors, state_dict)
    assert read_raw_checkpoint(legacy).config is None

    sharded = tmp_path / "sharded"
    sharded.mkdir()
    keys = list(state_dict)
    half = len(keys) // 2
    shards = {
        "model-00001-of-00002.safetensors": keys[:half],
        "model-00002-of-00002.safetensors": keys[half:],
    }
    for name, shard_keys in shards.items():
        save_file({k: state_dict[k] for k in shard_keys}, sharded / name)
    weight_map = {k: name for name, shard_keys in shards.items() for k in shard_keys}
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    assert read_raw_checkpoint(sharded).tensors.keys() == state_dict.keys()


def test_sharded_index_naming_absent_tensors_is_an_error(state_dict, tmp_path):
    save_file(state_dict, tmp_path / "model-00001-of-00001.safetensors")
    weight_map = dict.fromkeys([*state_dict, "lost.weight"], "model-00001-of-00001.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match="lists tensors no shard holds: lost.weight"):
        read_raw_checkpoint(tmp_path)


def test_refuses_pickles_that_need_code(state_dict, tmp_path):
    # A training script that pickled its config object next to the weights.
    torch.save({"model": state_dict, "config": argparse.Namespace(lr=0.1)}, tmp_path / "with_config.pth")
    refusal = r"refusing to load .*arbitrary code.*argparse\.Namespace.*weights_only=True"
    with pytest.raises(CheckpointError, match=refusal):
        read_raw_checkpoint(tmp_path / "with_config.pth")


def test_truncated_files_are_named_as_such(state_dict, tmp_path):
    torch.save(state_dict, tmp_path / "full.pth")
    save_file(state_dict, tmp_path / "full.safetensors")
    for name in ("full.pth", "full.safetensors"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut_{name}").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated torch zip archive"):
        read_raw_checkpoint(tmp_path / "cut_full.pth")
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        read_raw_checkpoint(tmp_path / "cut_full.safetensors")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "it is empty"),
        (b"label,youtube_id\nabseiling,abc\n", "truncated, corrupted or not a PyTorch checkpoint"),
    ],
)
def test_files_that_are_not_checkpoints(tmp_path, content, message):
    (tmp_path / "x.pth").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_raw_checkpoint(tmp_path / "x.pth")


def test_pickles_without_a_state_dict(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        read_raw_checkpoint(tmp_path / "list.pth")
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "no_weights.pth")
    with pytest.raises(
        CheckpointError, match=r"holds no state dict: a mapping with keys \['epoch', 'optimizer'\]"
    ):
        read_raw_checkpoint(tmp_path / "no_weights.pth")


def test_missing_paths(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file or folder"):
        read_raw_checkpoint(tmp_path / "absent.pth")
    with pytest.raises(CheckpointError, match="folder without Hugging Face weights"):
        read_raw_checkpoint(tmp_path)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2),
            "ViT-style checkpoint",
        ),
        (
            SwinTransformer(img_size=32, embed_dim=8, depths=(1,), num_heads=(1,), window_size=4),
            "Swin Transformer V1",
        ),
        (
            SwinTransformerV2Cr(img_size=(32, 32), embed_dim=8, depths=(1,), num_heads=(1,), window_size=4),
            "swinv2_cr",
        ),
        (torch.nn.Linear(3, 4), "not a SwinV2 checkpoint"),
    ],
    ids=["vit", "swin-v1", "swinv2-cr", "linear"],
)
def test_non_swinv2_models_are_refused(tmp_path, model, message):
    torch.save(model.state_dict(), tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=message) as err:
        read_2d_checkpoint(tmp_path / "other.pth")
    assert str(tmp_path / "other.pth") in str(err.value)
    assert "Only SwinV2 checkpoints can be loaded (2D ones are inflated)" in str(err.value)


def test_a_3d_state_dict_is_not_inflated_again(tmp_path):
    model = SwinTransformerV2_3D(embed_dim=8, depths=(1,), num_heads=(1,), pretrained_window_sizes=(0,))
    torch.save(model.state_dict(), tmp_path / "video.pth")
    with pytest.raises(
        CheckpointError, match=r"already a 3D state dict .*\(8, 3, 2, 4, 4\).*load_state_dict"
    ):
        read_2d_checkpoint(tmp_path / "video.pth")


def test_incomplete_state_dicts(state_dict, tmp_path):
    no_scale = {k: v for k, v in state_dict.items() if k != "layers.1.blocks.0.attn.logit_scale"}
    torch.save(no_scale, tmp_path / "no_scale.pth")
    with pytest.raises(CheckpointError, match="layers.1.blocks.0.attn.logit_scale is missing"):
        read_2d_checkpoint(tmp_path / "no_scale.pth")
    no_stage0 = {k: v for k, v in state_dict.items() if not k.startswith("layers.0.blocks.")}
    torch.save(no_stage0, tmp_path / "no_stage0.pth")
    with pytest.raises(CheckpointError, match=r"stage 0 has blocks \[\], expected 0..n-1"):
        read_2d_checkpoint(tmp_path / "no_stage0.pth")


def test_save_state_dict_formats(state_dict, tmp_path):
    save_state_dict(state_dict, tmp_path / "out.safetensors", {"model": "videoswinv2_tiny"})
    assert_same_tensors(load_file(tmp_path / "out.safetensors"), state_dict)
    from safetensors import safe_open

    with safe_open(tmp_path / "out.safetensors", "pt") as f:
        assert f.metadata() == {"model": "videoswinv2_tiny"}
    save_state_dict(state_dict, tmp_path / "out.pth")
    assert_same_tensors(torch.load(tmp_path / "out.pth", weights_only=True), state_dict)
    with pytest.raises(CheckpointError, match="use a .safetensors or .pth suffix"):
        save_state_dict(state_dict, tmp_path / "out.npz")
