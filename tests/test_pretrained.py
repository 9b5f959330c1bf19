"""The `pretrained` option across a model's life: start from 2D weights, fine-tune from a video
model, rebuild a trained model from its checkpoint alone, and train after evaluating."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy
from safetensors import safe_open
from test_checkpoints_inflate import inflate_cli, official_state_dict, randomise_
from timm.models.swin_transformer_v2 import SwinTransformerV2
from torch.utils.data import DataLoader

from videoswinv2 import create_model
from videoswinv2.checkpoints import InflationError, load_pretrained, read_checkpoint, save_state_dict
from videoswinv2.training import VideoClassifier

# A 2-stage model on 4 x 32 x 32 clips: tokens 2 x 8 x 8, then 2 x 4 x 4.
TINY = dict(embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[2, 4, 4], drop_path_rate=0.0)
WINDOWS_2D = ((0, 4, 4), (0, 4, 4))  # what the official-layout 2D file below shows
INFO = "videoswinv2.checkpoints.inflate"


def classifier(num_classes: int = 3, **kwargs) -> VideoClassifier:
    return VideoClassifier(
        model="videoswinv2_tiny", num_classes=num_classes, model_kwargs=dict(TINY), warmup_epochs=0, **kwargs
    )


def clips(num_classes: int = 3, n: int = 4) -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    items = [
        {"video": torch.randn(3, 4, 32, 32, generator=gen), "label": i % num_classes, "index": i}
        for i in range(n)
    ]
    return DataLoader(items, batch_size=2)


def trainer(max_steps: int = 1, callbacks=(), **kwargs) -> L.Trainer:
    options = dict(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )
    return L.Trainer(**{**options, **kwargs})


class BackboneAtFirstStep(L.Callback):
    """Keeps a copy of the backbone's tensors as they are when training starts."""

    def on_train_start(self, trainer, pl_module):
        self.state = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}
        self.windows = pl_module.backbone.pretrained_window_sizes


def backbone_of(lightning_ckpt: Path) -> dict[str, torch.Tensor]:
    state_dict = torch.load(lightning_ckpt, weights_only=True)["state_dict"]
    return {k.removeprefix("backbone."): v for k, v in state_dict.items()}


@pytest.fixture
def official_2d(tmp_path) -> Path:
    """A randomised 2D SwinV2 of the tiny module's shape with 5 classes, in the official layout
    (which stores its coordinate tables, so the file shows its windows)."""
    model = randomise_(
        SwinTransformerV2(
            img_size=32, embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5
        ),
        seed=3,
    )
    torch.save({"model": official_state_dict(model)}, path := tmp_path / "swinv2_2d.pth")
    return path


@pytest.fixture
def trained_run(official_2d, tmp_path) -> Path:
    """A Lightning checkpoint of a 3-class module started from ``official_2d`` and trained one step."""
    module = classifier(pretrained=str(official_2d))
    fit = trainer()
    fit.fit(module, clips())
    fit.save_checkpoint(path := tmp_path / "run.ckpt")
    return path


def test_the_constructor_reads_nothing(tmp_path):
    module = classifier(pretrained=str(tmp_path / "absent.pth"))  # read when a fresh fit starts, not here
    with pytest.raises(ValueError, match="no such checkpoint file or folder"):
        trainer().fit(module, clips())


def test_a_fresh_fit_starts_from_the_inflated_2d_weights_and_records_their_windows(official_2d):
    reference = create_model("videoswinv2_tiny", num_classes=3, pretrained=official_2d, **TINY)
    assert reference.pretrained_window_sizes == WINDOWS_2D  # shown by the file's coordinate tables
    module, seen = classifier(pretrained=str(official_2d)), BackboneAtFirstStep()
    trainer(callbacks=[seen]).fit(module, clips())
    for key, value in reference.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(seen.state[key], value), key
    assert seen.windows == WINDOWS_2D
    assert module.hparams.model_kwargs["pretrained_window_sizes"] == [[0, 4, 4], [0, 4, 4]]


def test_fine_tune_from_another_runs_lightning_checkpoint_with_other_classes(
    trained_run, official_2d, caplog
):
    official_2d.unlink()  # the source run's own pretrained file plays no part
    source = backbone_of(trained_run)
    module, seen = classifier(num_classes=5, pretrained=str(trained_run)), BackboneAtFirstStep()
    initial_head = module.backbone.head.fc.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger=INFO):
        trainer(callbacks=[seen]).fit(module, clips(num_classes=5))
    assert seen.state.keys() == source.keys()
    for key, value in source.items():
        if not key.startswith("head."):
            assert torch.equal(seen.state[key], value), key
    assert seen.state["head.fc.weight"].shape == (5, 32) and torch.equal(
        seen.state["head.fc.weight"], initial_head
    )
    assert seen.windows == WINDOWS_2D  # the source run's windows, from its hyper-parameters
    assert f"loaded {trained_run} (videoswinv2 layout, 3D)" in caplog.text
    assert "head.fc.weight: class count differs: checkpoint 3, model 5" in caplog.text


def test_fine_tune_from_a_videoswinv2_inflate_safetensors(tmp_path, caplog):
    model = randomise_(
        SwinTransformerV2(
            img_size=64, window_size=8, pretrained_window_sizes=(12, 12, 12, 6), num_classes=10
        ),
        seed=4,
    )
    torch.save({"model": official_state_dict(model)}, tmp_path / "swinv2_tiny.pth")
    inflated = tmp_path / "k400_init.safetensors"
    assert inflate_cli(str(tmp_path / "swinv2_tiny.pth"), str(inflated), "--model", "videoswinv2_tiny") == 0
    with safe_open(inflated, "pt") as f:
        source = {k: f.get_tensor(k) for k in f.keys()}
    module = VideoClassifier(
        model="videoswinv2_tiny", num_classes=7, pretrained=str(inflated), warmup_epochs=0
    )
    seen = BackboneAtFirstStep()
    with caplog.at_level(logging.INFO, logger=INFO):
        trainer(callbacks=[seen]).fit(module, clips(num_classes=7, n=2))
    for key, value in source.items():
        if not key.startswith("head."):
            assert torch.equal(seen.state[key], value), key
    assert seen.state["head.fc.weight"].shape == (7, 768)
    assert seen.windows == ((0, 12, 12), (0, 12, 12), (0, 12, 12), (0, 6, 6))  # from the file's header
    assert "class count differs: checkpoint 400, model 7" in caplog.text


def test_a_trained_model_is_rebuilt_from_its_checkpoint_alone(trained_run, official_2d):
    official_2d.unlink()
    restored = VideoClassifier.load_from_checkpoint(trained_run).eval()
    assert restored.backbone.pretrained_window_sizes == WINDOWS_2D
    state_dict = backbone_of(trained_run)
    assert all(torch.equal(restored.backbone.state_dict()[k], v) for k, v in state_dict.items())
    # A module built from a config that does not name the windows takes them from the checkpoint.
    rebuilt = classifier(pretrained=str(official_2d))
    rebuilt.on_load_checkpoint(torch.load(trained_run, weights_only=True))
    rebuilt.backbone.load_state_dict(state_dict)
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(clip), restored(clip), rtol=0, atol=0)
    # A fit of a restored model continues from its weights: `pretrained` is not read again.
    seen = BackboneAtFirstStep()
    trainer(callbacks=[seen]).fit(restored, clips())
    assert all(torch.equal(seen.state[k], v) for k, v in state_dict.items())


def test_validate_then_fit_in_one_process(official_2d):
    """validate / test / predict run under inference_mode; the coordinate tables, indices and
    masks they cache must still serve a training step afterwards."""
    # A fresh model: validate builds the cached tensors.
    module, run = classifier(pretrained=str(official_2d)), trainer(max_steps=2, limit_val_batches=None)
    run.validate(module, clips())
    seen = BackboneAtFirstStep()
    trainer(max_steps=2, callbacks=[seen]).fit(module, clips())
    assert seen.windows == WINDOWS_2D  # the pretrained weights were loaded by the fit
    cached = module.backbone.constants.tensors()
    assert cached and not any(t.is_inference() for t in cached)


class RestoreAfterSetup(SingleDeviceStrategy):
    """Lightning's order for FSDP and DeepSpeed: the model is wrapped right after configure_model
    and a checkpoint restored only after on_fit_start."""

    @property
    def restore_checkpoint_after_setup(self) -> bool:
        return True


def test_sharding_strategies_get_the_weights_before_wrapping(official_2d):
    reference = create_model("videoswinv2_tiny", num_classes=3, pretrained=official_2d, **TINY)
    module, seen = classifier(pretrained=str(official_2d)), BackboneAtFirstStep()
    strategy = RestoreAfterSetup(device=torch.device("cpu"))
    trainer(callbacks=[seen], strategy=strategy).fit(module, clips())
    assert torch.equal(
        seen.state["layers.1.blocks.1.attn.qkv.weight"], reference.layers[1].blocks[1].attn.qkv.weight
    )


def test_three_stages_need_no_window_sizes_and_inflate_a_three_stage_timm_checkpoint(tmp_path):
    model_2d = SwinTransformerV2(img_size=64, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 8))
    randomise_(model_2d, seed=5)
    torch.save(model_2d.state_dict(), path := tmp_path / "timm_3stage.pth")
    model = create_model(
        "videoswinv2_tiny", depths=(2, 2, 2), num_heads=(2, 4, 8), embed_dim=16, pretrained=path
    )
    assert model.pretrained_window_sizes == ((0, 0, 0),) * 3  # a timm file shows none
    assert torch.equal(
        model.layers[2].downsample.reduction.weight, model_2d.layers[2].downsample.reduction.weight
    )


def test_3d_sources_are_read_as_is_with_the_windows_they_record(trained_run, tmp_path):
    model = create_model("videoswinv2_tiny", num_classes=3, pretrained_window_sizes=WINDOWS_2D, **TINY)
    save_state_dict(model.state_dict(), tmp_path / "plain.pth")
    save_state_dict(
        model.state_dict(), tmp_path / "tagged.safetensors", {"pretrained_window_sizes": "[4, 4]"}
    )
    expected = {
        tmp_path / "plain.pth": None,  # a bare state dict records nothing
        tmp_path / "tagged.safetensors": (4, 4),
        trained_run: WINDOWS_2D,
    }
    for path, windows in expected.items():
        ckpt = read_checkpoint(path)
        assert (ckpt.layout, ckpt.is_3d, ckpt.pretrained_window_sizes) == ("videoswinv2", True, windows), path
        assert (ckpt.embed_dim, ckpt.depths, ckpt.num_classes) == (16, (2, 2), 3)


def test_a_3d_checkpoint_of_another_shape_is_an_error_naming_the_keys(trained_run):
    model = create_model("videoswinv2_tiny", num_classes=3, **{**TINY, "depths": [2, 3]})
    with pytest.raises(InflationError) as err:
        load_pretrained(model, trained_run)
    message = str(err.value)
    assert message.startswith(f"cannot load {trained_run} (videoswinv2 layout) into this model:")
    assert "missing from the checkpoint (17):\n    layers.1.blocks.2." in message
    three_stages = {**TINY, "depths": [2, 2, 2], "num_heads": [2, 4, 8]}
    with pytest.raises(InflationError, match=r"depths=\(2, 2\).*\n.*depths=\(2, 2, 2\)"):
        create_model("videoswinv2_tiny", num_classes=3, pretrained=trained_run, **three_stages)
