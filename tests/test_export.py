"""``videoswinv2 export`` and the package's metadata in every file that carries it."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

import videoswinv2.inference.export as export
from videoswinv2 import create_model
from videoswinv2.checkpoints import save_state_dict
from videoswinv2.checkpoints.records import read_strings
from videoswinv2.cli import main
from videoswinv2.inference import load_model
from videoswinv2.record import INPUT_MEAN, INPUT_STD, EvalViews, ModelRecord

KWARGS = {"embed_dim": 16, "depths": [1, 1], "num_heads": [2, 4], "window_size": [2, 4, 4]}
VIEWS = EvalViews(num_clips=1, num_frames=4, short_side=32, crop_size=32)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A small model whose every block counts (post-norm weights ~1) and whose header records
    its model, classes and views."""
    torch.manual_seed(0)
    model = create_model("videoswinv2_tiny", num_classes=3, **KWARGS)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.normal_(1.0, 0.2)
            elif name == "head.fc.bias":
                parameter.normal_()
    metadata = ModelRecord("videoswinv2_tiny", 3, KWARGS, ("run", "jump", "sit"), asdict(VIEWS))
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    save_state_dict(model.state_dict(), path, metadata.to_strings())
    return path


def test_metadata_round_trips_through_strings_and_reads_old_files():
    metadata = ModelRecord(
        "videoswinv2_base", 400, {"pretrained_window_sizes": [12, 12, 12, 6], "drop_path_rate": 0.2},
        ("a", "b"), asdict(VIEWS), source="swinv2.pth", temporal_init="average",
    )  # fmt: skip
    strings = metadata.to_strings()
    assert strings["pretrained_window_sizes"] == "[12, 12, 12, 6]"  # as inflate outputs always had it
    assert ModelRecord.from_strings(strings) == metadata
    old_inflate_header = {
        "model": "videoswinv2_tiny",
        "num_classes": "400",
        "pretrained_window_sizes": "null",
    }
    assert ModelRecord.from_strings(old_inflate_header).pretrained_window_sizes is None
    old_lightning = {"hyper_parameters": {"model": "videoswinv2_tiny", "num_classes": 3}, "videoswinv2": {"classes": ["x"]},
                     "datamodule_hyper_parameters": {"num_test_clips": 2, "num_frames": 16}}  # fmt: skip
    read = ModelRecord.from_file_entries(old_lightning)
    assert read.classes == ("x",) and read.views["num_clips"] == 2 and read.views["crop_size"] == 224


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_runs_like_pytorch_for_any_batch_and_carries_its_metadata(fmt, tiny_checkpoint, tmp_path):
    loaded = load_model(tiny_checkpoint)
    out = tmp_path / f"tiny.{fmt}"
    result = export.export_model(loaded, fmt, out)
    assert result.max_abs_diff <= 1e-4 and result.input_shape == (-1, 3, 4, 32, 32)
    clips = torch.randn(5, 3, 4, 32, 32)
    with torch.no_grad():
        expected = loaded.module.backbone(clips)
    torch.testing.assert_close(export.run_exported(out, fmt, clips), expected, atol=1e-4, rtol=0)
    assert expected.std() > 0.1  # the comparison is not between two near-constant outputs

    strings = read_strings(out)
    metadata = ModelRecord.from_strings(strings)
    assert (metadata.model, metadata.classes, metadata.num_classes) == (
        "videoswinv2_tiny",
        ("run", "jump", "sit"),
        3,
    )
    assert EvalViews(**metadata.views) == VIEWS
    preprocessing = json.loads(strings["preprocessing"])
    assert (preprocessing["mean"], preprocessing["std"]) == (list(INPUT_MEAN), list(INPUT_STD))
    assert (preprocessing["num_frames"], preprocessing["crop_size"]) == (4, 32)
    assert "multi_label" not in strings and strings["output"].startswith("logits")  # single-label


def test_an_export_that_differs_from_pytorch_is_not_kept(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    def write(model, example, fmt, path, strings):
        path.write_bytes(b"an exported model")

    monkeypatch.setattr(export, "_write", write)
    monkeypatch.setattr(export, "run_exported", lambda path, fmt, clips: torch.full((len(clips), 3), 1e3))
    out = tmp_path / "tiny.pt2"
    assert main(["export", "--ckpt", str(tiny_checkpoint), "--output", str(out)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "differ from PyTorch's by up to" in last and "was not written" in last
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("output", "extra", "message"),
    [
        ("model.bin", [], "say --format onnx or --format pt2"),
        ("existing.onnx", [], "exists: choose another file, or add --overwrite"),
        ("missing/model.onnx", [], "the folder"),
    ],
)
def test_export_refuses_bad_outputs_in_one_line(output, extra, message, tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "existing.onnx").write_bytes(b"the user's model")
    assert main(["export", "--ckpt", str(tiny_checkpoint), "--output", str(tmp_path / output), *extra]) == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert (tmp_path / "existing.onnx").read_bytes() == b"the user's model"
