"""A multi-label model (independent sigmoids) through the inference tools: loading from either
file, ``predict --threshold``, per-class timeline segments and exports ending in sigmoids."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

import videoswinv2.inference.export as export
from videoswinv2.checkpoints import save_state_dict
from videoswinv2.checkpoints.records import read_strings
from videoswinv2.cli import main
from videoswinv2.inference import (
    PredictionWriter,
    load_model,
    merge_segments,
    multi_view_tasks,
    predict_videos,
    read_rows,
)
from videoswinv2.inference.inputs import mirrored_path
from videoswinv2.inference.timeline import Window
from videoswinv2.record import LIGHTNING_KEY, EvalViews, ModelRecord
from videoswinv2.training import VideoClassifier
from videoswinv2.training.evaluation import row_predicted

KWARGS = {"embed_dim": 16, "depths": [1, 1], "num_heads": [2, 4], "window_size": [2, 4, 4]}
VIEWS = EvalViews(num_clips=1, num_frames=4, short_side=32, crop_size=32)
CLASSES = ("c0", "c1", "c2", "c3", "c4")
# The head's bias decides: the weights are small, so each class's probability stays near the
# sigmoid of its bias whatever the clip (0.95, 0.05, 0.62, 0.38, 0.82).
BIAS = [3.0, -3.0, 0.5, -0.5, 1.5]
EXPECTED = {c: 1 / (1 + math.exp(-b)) for c, b in zip(CLASSES, BIAS)}


def _module(multi_label: bool = True) -> VideoClassifier:
    """A tiny classifier whose every block counts (post-norm weights ~1) and whose head is ~BIAS."""
    torch.manual_seed(0)
    module = VideoClassifier("videoswinv2_tiny", len(CLASSES), multi_label=multi_label, model_kwargs=KWARGS)
    with torch.no_grad():
        for name, parameter in module.backbone.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.normal_(1.0, 0.2)
        module.backbone.head.fc.weight.normal_(0, 0.01)
        module.backbone.head.fc.bias.copy_(torch.tensor(BIAS))
    return module.eval()


def _safetensors(path: Path, multi_label: bool = True) -> Path:
    record = ModelRecord(
        "videoswinv2_tiny", len(CLASSES), KWARGS, CLASSES, asdict(VIEWS), multi_label=multi_label
    )
    save_state_dict(_module(multi_label).backbone.state_dict(), path, record.to_strings())
    return path


@pytest.fixture(scope="module")
def multi_label_ckpt(tmp_path_factory) -> Path:
    """The multi-label model as a safetensors file whose header records it."""
    return _safetensors(tmp_path_factory.mktemp("multi") / "multi.safetensors")


@pytest.fixture(scope="module")
def video(data_make_numbered_video, tmp_path_factory) -> Path:
    """6 s at 10 fps: 7 timeline windows a second apart (a clip spans 0.7 s; the last ends the video)."""
    return data_make_numbered_video(tmp_path_factory.mktemp("video") / "v.mp4", 60, fps=10)


def _common(ckpt: Path) -> list[str]:
    return ["--ckpt", str(ckpt), "--precision", "32", "--no-progress", "--num-workers", "0"]


def test_both_files_of_a_multi_label_model_load_it_as_multi_label(multi_label_ckpt, tmp_path):
    module = _module()
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    module.trainer = trainer
    lightning_ckpt = tmp_path / "multi.ckpt"
    trainer.save_checkpoint(lightning_ckpt, weights_only=True)
    saved = torch.load(lightning_ckpt, weights_only=True)
    saved[LIGHTNING_KEY] = ModelRecord(classes=CLASSES, views=asdict(VIEWS)).lightning_entry()
    torch.save(saved, lightning_ckpt)

    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = module(clips).sigmoid()
    for path in (lightning_ckpt, multi_label_ckpt):
        loaded = load_model(path)
        assert loaded.record.multi_label and loaded.module.hparams.multi_label, path
        assert loaded.classes == list(CLASSES) and loaded.views == VIEWS
        with torch.no_grad():
            probs = loaded.module.evaluator.outputs(clips)["probs"]
        torch.testing.assert_close(probs, expected, atol=1e-5, rtol=0)
    assert not load_model(_safetensors(tmp_path / "single.safetensors", False)).record.multi_label


# -- predict ---------------------------------------------------------------------------------------


def _predicted(row: dict) -> list[str]:
    return [label for label, _ in row_predicted(row)]


def test_predict_writes_the_classes_over_the_threshold_and_the_top_k(
    multi_label_ckpt, video, tmp_path, capsys
):
    args = [str(video), *_common(multi_label_ckpt), "--topk", "2"]
    csv_out, jsonl_out = tmp_path / "p.csv", tmp_path / "p.jsonl"
    assert main(["predict", *args, "--output", str(csv_out)]) == 0
    assert csv_out.read_text().splitlines()[0] == (
        "video,status,reason,predicted,predicted_probs,top1_label,top1_prob,top2_label,top2_prob"
    )
    [row] = read_rows(csv_out)
    assert row["predicted"] == "c0;c4;c2"  # c2 is over 0.5 but not in the top 2
    assert (row["top1_label"], row["top2_label"]) == ("c0", "c4")
    for label, prob in row_predicted(row):
        assert prob == pytest.approx(EXPECTED[label], abs=0.05)
    record = json.loads((tmp_path / "p.csv.videoswinv2.json").read_text())
    assert record["settings"]["threshold"] == 0.5

    assert main(["predict", *args, "--output", str(jsonl_out), "--threshold", "0.7"]) == 0
    [row] = read_rows(jsonl_out)
    assert row["predicted"] == ["c0", "c4"] and row["labels"] == ["c0", "c4"]
    assert row["predicted_probs"] == pytest.approx([EXPECTED["c0"], EXPECTED["c4"]], abs=0.05)

    # Another threshold is another run: refused, or redone with --overwrite.
    capsys.readouterr()
    before = csv_out.read_bytes()
    assert main(["predict", *args, "--output", str(csv_out), "--threshold", "0.9"]) == 2
    assert "other settings (threshold differ)" in capsys.readouterr().err.strip().splitlines()[-1]
    assert csv_out.read_bytes() == before
    assert main(["predict", *args, "--output", str(csv_out), "--threshold", "0.9", "--overwrite"]) == 0
    assert [_predicted(row) for row in read_rows(csv_out)] == [["c0"]]

    capsys.readouterr()
    assert main(["predict", *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == str(video) and lines[1].startswith("  over 0.5: c0 (0.9") and len(lines) == 4
    assert [line.split()[:2] for line in lines[2:]] == [["1.", "c0"], ["2.", "c4"]]


def test_a_single_label_model_refuses_a_threshold_and_writes_its_rows_as_before(video, tmp_path, capsys):
    ckpt = _safetensors(tmp_path / "single.safetensors", multi_label=False)
    out = tmp_path / "p.csv"
    assert main(["predict", str(video), *_common(ckpt), "--threshold", "0.3", "--output", str(out)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--threshold is for multi-label models" in last and "drop --threshold" in last
    assert not out.exists()
    assert main(["predict", str(video), *_common(ckpt), "--topk", "1", "--output", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "video,status,reason,top1_label,top1_prob"
    assert "threshold" not in json.loads((tmp_path / "p.csv.videoswinv2.json").read_text())["settings"]


def test_a_writer_that_no_command_prepared_takes_multi_label_from_the_module(
    multi_label_ckpt, video, tmp_path
):
    """As under ``lightning predict``: the writer's threshold applies because the module is multi-label."""
    loaded = load_model(multi_label_ckpt)
    out = tmp_path / "p.jsonl"
    writer = PredictionWriter(str(out), topk=1, classes=CLASSES, threshold=0.7, progress=False)
    predict_videos(loaded.module, multi_view_tasks([str(video)], VIEWS), writer, batch_size=3, num_workers=0)
    [row] = read_rows(out)
    assert row["predicted"] == ["c0", "c4"] and row["labels"] == ["c0"]
    assert json.loads((tmp_path / "p.jsonl.videoswinv2.json").read_text())["settings"]["threshold"] == 0.7


# -- timeline --------------------------------------------------------------------------------------


def _over(classes: str) -> list[Window]:
    """Windows a second apart (2 s long, centres 1, 2, ...) whose classes over the threshold are
    the letters of each word of ``classes``; each class's probability is 0.6 + window / 100."""
    return [
        Window(k, k, k + 2, (("x", 0.99),), tuple((c, 0.6 + k / 100) for c in word if c != "-"))
        for k, word in enumerate(classes.split(" "))
    ]


def test_each_class_has_its_own_segments_which_may_overlap():
    windows = _over("A AB AB B - A A BA")  # "-": no class over the threshold
    segments = merge_segments(windows, per_class=True)
    assert [(s.label, s.start_s, s.end_s, s.windows) for s in segments] == [
        ("A", 0.0, 3.5, 3),
        ("B", 1.5, 4.5, 3),
        ("A", 5.5, 9.0, 3),
        ("B", 7.5, 9.0, 1),
    ]
    assert segments[0].mean_prob == pytest.approx((0.6 + 0.61 + 0.62) / 3)
    # Under 1.5 s: A's one-window gap (1 s) closes; its two-window gap (2 s) and last window (1.5 s) stay.
    closed = merge_segments(_over("A - A A A - - A"), min_seconds=1.5, per_class=True)
    assert [(s.label, s.start_s, s.end_s, s.windows) for s in closed] == [
        ("A", 0.0, 5.5, 5),
        ("A", 7.5, 9.0, 1),
    ]
    assert closed[0].mean_prob == pytest.approx(sum([0.6, 0.62, 0.63, 0.64]) / 4)  # the gap is not counted
    dropped = merge_segments(_over("B B B B - - B -"), min_seconds=1.5, per_class=True)
    assert [(s.label, s.start_s, s.end_s) for s in dropped] == [("B", 0.0, 4.5)]
    assert merge_segments(_over("- -"), per_class=True) == []
    # Single-label segments stay those of the top-1, whatever is over the threshold.
    assert [s.label for s in merge_segments(windows)] == ["x"]


def test_timeline_of_a_multi_label_model_writes_per_class_segments_and_continues(
    multi_label_ckpt, video, tmp_path, capsys
):
    out = tmp_path / "tl.csv"
    args = ["timeline", str(video), *_common(multi_label_ckpt), "--stride-seconds", "1", "--topk", "1"]
    assert main([*args, "--output", str(out)]) == 0
    rows = read_rows(out)
    assert len(rows) == 7 and {tuple(_predicted(row)) for row in rows} == {("c0", "c4", "c2")}
    segments_file = tmp_path / "tl.segments.csv"
    segments = read_rows(segments_file)
    end = rows[-1]["end_s"]
    assert [(s["label"], s["start_s"], s["end_s"], s["windows"]) for s in segments] == [
        (label, "0.000", end, "7") for label in ("c0", "c2", "c4")
    ]
    picture = tmp_path / "tl_plots" / mirrored_path(str(video), ".png")
    assert picture.is_file()
    assert json.loads((tmp_path / "tl.csv.videoswinv2.json").read_text())["settings"]["threshold"] == 0.5

    # Segments made again from the rows on disk (a run killed before the video's end) are the same.
    written = segments_file.read_text()
    segments_file.write_text("")
    picture.unlink()
    assert main([*args, "--output", str(out)]) == 0
    assert segments_file.read_text() == written and picture.is_file()

    capsys.readouterr()
    assert main([*args, "--threshold", "0.7"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == str(video) and [line.split()[-2] for line in lines[1:]] == ["c0", "c4"]


# -- export ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_a_multi_label_export_gives_the_sigmoids_and_says_so(fmt, multi_label_ckpt, tmp_path):
    loaded = load_model(multi_label_ckpt)
    out = tmp_path / f"multi.{fmt}"
    result = export.export_model(loaded, fmt, out)
    assert result.output == "probabilities" and result.max_abs_diff <= 1e-4
    clips = torch.randn(3, 3, 4, 32, 32)
    with torch.no_grad():
        expected = loaded.module.backbone(clips).sigmoid()
    torch.testing.assert_close(export.run_exported(out, fmt, clips), expected, atol=1e-5, rtol=0)
    strings = read_strings(out)
    assert ModelRecord.from_strings(strings).multi_label
    assert strings["output"].startswith("probabilities") and "sigmoid" in strings["output"]
    if fmt == "onnx":
        import onnx

        assert [o.name for o in onnx.load(str(out)).graph.output] == ["probabilities"]
