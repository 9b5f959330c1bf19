"""``videoswinv2 predict`` / ``extract-features`` and the inference engine under them."""

from __future__ import annotations

import csv
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, check, run_cli, run_cli_in_process

from videoswinv2.cli import main
from videoswinv2.data import load_views
from videoswinv2.inference import (
    ViewStream,
    choose_precision,
    collect_videos,
    load_model,
    mirrored_path,
    multi_view_tasks,
    read_rows,
)
from videoswinv2.record import EvalViews

SMOKE_CLASSES = {"moving down slowly", "moving up slowly", "moving down quickly"}
_RESULTS: dict[str, Path] = {}  # outputs one test leaves for a later one

# -- pure parts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "accelerator", "flags", "expected"),
    [
        ("auto", "cuda", set(), "bf16"),
        ("auto", "cpu", {"avx512f", "amx_bf16", "amx_tile"}, "bf16"),  # Sapphire Rapids
        ("auto", "cpu", {"avx512f", "avx512_bf16"}, "bf16"),  # Zen 4, Cooper Lake
        ("auto", "cpu", {"avx2", "avx512f"}, "32"),  # bf16 would be emulated
        ("auto", "cpu", set(), "32"),  # no /proc/cpuinfo
        ("auto", "mps", {"avx512_bf16"}, "32"),
        ("32", "cuda", set(), "32"),
        ("bf16", "cpu", set(), "bf16"),
    ],
)
def test_auto_precision_is_bf16_only_where_the_hardware_has_it(requested, accelerator, flags, expected):
    assert choose_precision(requested, accelerator, flags) == expected


def test_choose_precision_refuses_unknown_names():
    with pytest.raises(ValueError, match="precision"):
        choose_precision("16", "cpu", set())


def test_inputs_mix_files_folders_and_lists_with_any_characters(tmp_path):
    folder = tmp_path / "clips"
    (folder / "sub dir").mkdir(parents=True)
    videos = [folder / "b.mp4", folder / "sub dir" / "vidéo à 1.MKV", folder / "a.webm"]
    for video in videos:
        video.write_bytes(b"")
    (folder / "notes.txt").write_text("not a video\n")
    (folder / ".c.partial.mp4").write_bytes(b"")  # hidden: an unfinished `prepare` output, say
    (folder / "phone.m4v").write_bytes(b"")  # predict takes more suffixes than datasets do
    listed = tmp_path / "list.txt"
    listed.write_text(f"# my videos\n{videos[0]}\n\n{tmp_path / 'elsewhere ü.mp4'}\n")
    found = collect_videos([str(listed), str(folder), str(videos[1])])
    assert found == [
        str(videos[0]),
        str(tmp_path / "elsewhere ü.mp4"),  # listed but missing: kept, reported as failed later
        str(videos[2]),
        str(folder / "phone.m4v"),
        str(videos[1]),
    ]
    with pytest.raises(ValueError, match="nothing.txt does not exist"):
        collect_videos([str(tmp_path / "nothing.txt")])


def test_feature_files_mirror_the_video_path_inside_the_output():
    assert mirrored_path("clips/a b/x.mp4", ".npy").as_posix() == "clips/a b/x.mp4.npy"
    assert mirrored_path("./clips//x.avi", ".npy").as_posix() == "clips/x.avi.npy"
    assert mirrored_path("/data/k400/x.mp4", ".npy").as_posix() == "data/k400/x.mp4.npy"
    assert not mirrored_path("../up/x.mp4", ".npy").is_absolute()
    assert ".." not in mirrored_path("../up/x.mp4", ".npy").parts


def test_view_stream_batches_views_across_videos_and_reports_broken_ones(data_synthetic_root, tmp_path):
    videos = sorted(str(p) for p in (data_synthetic_root / "test").rglob("*.mp4"))[:3]
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    views = EvalViews(num_clips=2, num_frames=4, short_side=32, crop_size=32)
    stream = ViewStream(multi_view_tasks([videos[0], str(broken), *videos[1:]], views), batch_size=4)
    batches = list(stream)
    assert [len(b["video"]) for b in batches] == [4, 4, 4, 4, 2]  # 3 videos x 6 views, across videos
    assert [item.video for b in batches for item, _ in b["failed"]] == [str(broken)]
    assert [done.video for b in batches for done in b["finished"]] == videos
    got: dict[str, list[torch.Tensor]] = {}
    for batch in batches:
        for view, item, index in zip(batch["video"], batch["item"], batch["view"].tolist()):
            assert item.num_views == 6
            assert index == len(got.setdefault(item.video, []))  # views arrive in order
            got[item.video].append(view)
    for video in videos:
        torch.testing.assert_close(torch.stack(got[video]), load_views(views, video), rtol=0, atol=0)


def test_views_are_validated():
    with pytest.raises(ValueError, match="num_clips must be >= 1"):
        EvalViews(num_clips=0)
    with pytest.raises(ValueError, match="crop_size 256 is larger than short_side 224"):
        EvalViews(crop_size=256)


# -- the commands on a trained smoke model ----------------------------------------------------------


def _predict(*args: str) -> int:
    return main(["predict", *args, "--no-progress"])


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    rows = read_rows(path)
    assert len({row["video"] for row in rows}) == len(rows), "a video has two rows"
    return {row["video"]: row for row in rows}


def assert_same_predictions(a: dict[str, dict], b: dict[str, dict], atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for video in a:
        assert a[video]["status"] == b[video]["status"]
        assert a[video]["top1_label"] == b[video]["top1_label"], video
        for key in a[video]:
            if key.endswith("_prob") and a[video][key]:
                assert float(a[video][key]) == pytest.approx(float(b[video][key]), abs=atol)


@pytest.fixture(scope="module")
def input_folder(smoke_run, tmp_path_factory) -> Path:
    """The smoke run's 9 test videos, one renamed with spaces and non-ASCII letters, plus a broken one."""
    folder = tmp_path_factory.mktemp("inputs") / "my videos"
    shutil.copytree(smoke_run["root"] / "data" / "test", folder)
    first = sorted(folder.rglob("*.mp4"))[0]
    first.rename(first.with_name("vidéo à la plage.mp4"))
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    return folder


def test_predict_folder_with_workers_equals_no_workers_and_reports_the_broken_video(
    smoke_run, input_folder, tmp_path, capsys
):
    common = [str(input_folder), "--ckpt", str(smoke_run["ckpt"]), "--precision", "32", "--batch-size", "5"]
    assert _predict(*common, "--num-workers", "2", "--output", str(tmp_path / "two.csv")) == 1
    err = capsys.readouterr().err
    assert "9 videos done, 1 failed" in err and "broken.mp4" in err
    assert _predict(*common, "--num-workers", "0", "--output", str(tmp_path / "zero.jsonl")) == 1
    two, zero = read_csv(tmp_path / "two.csv"), read_csv(tmp_path / "zero.jsonl")
    assert len(two) == 10 and any("vidéo à la plage" in video for video in two)
    broken = two.pop(str(input_folder / "broken.mp4"))
    assert broken["status"] == "failed" and broken["reason"]
    assert {row["status"] for row in two.values()} == {"ok"}
    assert {row["top1_label"] for row in two.values()} <= SMOKE_CLASSES
    assert zero.pop(str(input_folder / "broken.mp4"))["status"] == "failed"
    for video, row in zero.items():
        assert row["labels"][0] == two[video]["top1_label"]
        assert row["probs"] == pytest.approx([float(two[video][f"top{k}_prob"]) for k in (1, 2, 3)], abs=2e-6)
    _RESULTS["one process"] = tmp_path / "two.csv"


def test_two_processes_write_the_rows_of_one(smoke_run, input_folder, tmp_path):
    if "one process" not in _RESULTS:
        pytest.skip("needs the one-process run above")
    output = tmp_path / "ddp.csv"
    result = run_cli(
        "predict", str(input_folder), "--ckpt", str(smoke_run["ckpt"]), "--precision", "32", "--batch-size", "5",
        "--num-workers", "1", "--device", "cpu", "--devices", "2", "--no-progress", "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "9 videos done, 1 failed" in result.stderr
    assert "LeafSpec" not in result.stderr  # Lightning's deprecated call, silenced for every tool
    assert not list(tmp_path.glob("ddp.csv.rank*"))  # merged into the output
    assert_same_predictions(read_csv(output), read_csv(_RESULTS["one process"]))


def test_a_second_run_skips_finished_videos_and_overwrite_redoes_them(
    smoke_run, input_folder, tmp_path, capsys
):
    output = tmp_path / "out.csv"
    common = [str(input_folder), "--ckpt", str(smoke_run["ckpt"]), "--views", "1", "--output", str(output)]
    assert _predict(*common) == 1
    first = output.read_text()
    capsys.readouterr()
    assert _predict(*common) == 1  # the broken video is retried, and fails again
    err = capsys.readouterr().err
    assert "0 videos done, 1 failed, 9 skipped" in err
    assert sorted(output.read_text().splitlines()) == sorted(first.splitlines())
    assert _predict(*common, "--overwrite") == 1
    assert "9 videos done, 1 failed" in capsys.readouterr().err
    assert len(read_csv(output)) == 10


def test_predict_prints_top_k_names_for_a_real_video(smoke_run, data_sample_videos, capsys):
    video = data_sample_videos["bikes"]
    assert _predict(str(video), "--ckpt", str(smoke_run["ckpt"]), "--topk", "2", "--views", "1") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == str(video) and len(lines) == 3
    for rank, line in enumerate(lines[1:], 1):
        label, prob = line.split(".", 1)[1].rsplit(None, 1)
        assert line.strip().startswith(f"{rank}.")
        assert label.strip() in SMOKE_CLASSES and 0 <= float(prob) <= 1


def test_bf16_gives_the_top1_of_fp32_on_the_cpu(smoke_run, tmp_path):
    test = str(smoke_run["root"] / "data" / "test")
    for precision in ("32", "bf16"):
        args = [test, "--ckpt", str(smoke_run["ckpt"]), "--precision", precision]
        assert _predict(*args, "--output", str(tmp_path / f"{precision}.csv")) == 0
    fp32, bf16 = read_csv(tmp_path / "32.csv"), read_csv(tmp_path / "bf16.csv")
    assert {v: r["top1_label"] for v, r in fp32.items()} == {v: r["top1_label"] for v, r in bf16.items()}
    assert_same_predictions(fp32, bf16, atol=0.05)


def test_lightning_predict_writes_what_videoswinv2_predict_writes(smoke_run, tmp_path):
    """``lightning predict -c configs/smoke.yaml`` over the test split, from another directory so
    that the config's ``runs/smoke/predict.csv`` lands in tmp_path (both commands in this process)."""
    args = [
        arg if arg != "configs/smoke.yaml" else str(REPO / "configs/smoke.yaml") for arg in smoke_run["args"]
    ]
    lightning_args = ["predict", *args, "--ckpt_path", str(smoke_run["ckpt"]), "--trainer.logger", "false"]
    check(run_cli_in_process(*lightning_args, cwd=tmp_path, argv0="lightning"))
    lightning = read_csv(tmp_path / "runs" / "smoke" / "predict.csv")
    annotations = smoke_run["root"] / "data" / "annotations" / "test.csv"
    assert annotations.is_file()
    videos = sorted(str(p) for p in (smoke_run["root"] / "data" / "test").rglob("*.mp4"))
    assert sorted(lightning) == videos
    ours = tmp_path / "ours.csv"
    check(
        run_cli_in_process(
            "predict", *videos, "--ckpt", str(smoke_run["ckpt"]), "--precision", "32", "--output", str(ours)
        )
    )
    assert_same_predictions(lightning, read_csv(ours))


def test_features_equal_the_models_pooled_pre_logits_and_separate_the_classes(smoke_run, tmp_path, capsys):
    from videoswinv2.data import read_annotations

    data = smoke_run["root"] / "data"
    classes = (data / "classes.txt").read_text().splitlines()
    labels = {
        Path(record.path): record.label
        for split in ("train", "test")
        for record in read_annotations(data / f"annotations/{split}.csv", data, classes).videos
    }
    train = sorted(p for p in labels if p.parent.name == "train")
    test = sorted(p for p in labels if p.parent.name == "test")
    listed = tmp_path / "train videos.txt"  # every 8th training video: 24 of them, 6 to 10 per class
    listed.write_text("\n".join(map(str, train[::8])) + "\n")
    out = tmp_path / "features"
    ckpt = ["--ckpt", str(smoke_run["ckpt"]), "--precision", "32", "--no-progress"]
    assert main(["extract-features", str(listed), str(data / "test"), *ckpt, "--output", str(out)]) == 0
    index = {row["video"]: row for row in csv.DictReader(open(out / "index.csv"))}
    assert len(index) == len(train[::8]) + len(test)
    assert {row["num_views"] for row in index.values()} == {"6"}  # the checkpoint's 2 clips x 3 crops

    loaded = load_model(smoke_run["ckpt"], need_head=False)
    video = str(test[0])
    with torch.no_grad():
        views = load_views(loaded.views, video)
        expected = loaded.module.backbone.forward_head(
            loaded.module.backbone.forward_features(views), pre_logits=True
        ).mean(0)
    saved = np.load(out / index[video]["feature"])
    assert saved.dtype == np.float32 and saved.shape == expected.shape
    np.testing.assert_allclose(saved, expected.numpy(), atol=1e-5, rtol=0)

    def features_and_labels(videos: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([torch.from_numpy(np.load(out / index[str(v)]["feature"])) for v in videos])
        return x, torch.tensor([labels[v] for v in videos])

    x_train, y_train = features_and_labels(train[::8])
    x_test, y_test = features_and_labels(test)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    probe = torch.nn.Linear(x_train.shape[1], len(loaded.classes))
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=200)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe((x_train - mean) / std), y_train)
        loss = loss + 1e-3 * probe.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    accuracy = (probe((x_test - mean) / std).argmax(1) == y_test).float().mean()
    assert accuracy >= 0.9

    # per view, and a second run that finds everything done
    capsys.readouterr()
    assert main(["extract-features", str(data / "test"), *ckpt, "--output", str(out)]) == 0
    assert f"0 videos done, 0 failed, {len(test)} skipped" in capsys.readouterr().err
    assert main(["extract-features", video, *ckpt, "--output", str(tmp_path / "pv"), "--per-view"]) == 0
    per_view = np.load(tmp_path / "pv" / mirrored_path(video, ".npy"))
    assert per_view.shape == (6, *expected.shape)
    np.testing.assert_allclose(per_view.mean(0), expected.numpy(), atol=1e-5, rtol=0)


def test_feature_maps_have_the_backbones_shape(smoke_run, tmp_path):
    video = str(sorted((smoke_run["root"] / "data" / "test").rglob("*.mp4"))[0])
    args = ["--ckpt", str(smoke_run["ckpt"]), "--views", "1", "--no-progress", "--feature-map"]
    assert main(["extract-features", video, *args, "--output", str(tmp_path)]) == 0
    # smoke model: 32 channels x 2 stages -> 64; 16 frames / 2, 64 px / 4 / 2 (one merge)
    assert np.load(tmp_path / mirrored_path(video, ".npy")).shape == (64, 8, 8, 8)


# -- bad input and warnings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"), [("--num-frames", "0"), ("--views", "0"), ("--topk", "0"), ("--batch-size", "0")]
)
def test_zero_counts_are_one_line_errors(option, value, smoke_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "video.mp4", "--ckpt", str(smoke_run["ckpt"]), option, value])
    assert exit_info.value.code != 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in last and "must be >= 1, got 0" in last


def test_predict_refuses_a_plain_state_dict_without_model_and_names_the_option(tmp_path, capsys):
    from videoswinv2 import create_model
    from videoswinv2.checkpoints import save_state_dict

    save_state_dict(create_model("videoswinv2_tiny").state_dict(), tmp_path / "tiny.safetensors")
    assert main(["predict", str(tmp_path / "x.mp4"), "--ckpt", str(tmp_path / "tiny.safetensors")]) == 2
    assert "--model" in capsys.readouterr().err.strip().splitlines()[-1]


def test_an_inflated_checkpoint_warns_that_its_head_was_never_trained(tmp_path, data_sample_videos, capsys):
    from videoswinv2 import create_model
    from videoswinv2.checkpoints import save_state_dict
    from videoswinv2.record import kinetics400_classes

    state_dict = create_model("videoswinv2_tiny").state_dict()
    save_state_dict(state_dict, tmp_path / "inflated.safetensors", {"source": "swinv2_tiny.pth"})
    torch.nn.init.normal_(state_dict["head.fc.bias"])
    save_state_dict(state_dict, tmp_path / "trained.safetensors")
    video = str(data_sample_videos["carphone_pristine"])
    small = [
        "--model",
        "videoswinv2_tiny",
        "--views",
        "1",
        "--num-frames",
        "4",
        "--topk",
        "3",
        "--no-progress",
        # small crops, decoded in this process: the warning is the point, not the views
        *("--short-side", "64", "--crop-size", "64", "--num-workers", "0"),
    ]
    assert main(["predict", video, "--ckpt", str(tmp_path / "inflated.safetensors"), *small]) == 0
    out = capsys.readouterr()
    assert "inflated from the 2D image checkpoint swinv2_tiny.pth" in out.err
    names = [line.split(".", 1)[1].rsplit(None, 1)[0].strip() for line in out.out.strip().splitlines()[1:]]
    assert len(names) == 3 and set(names) <= set(kinetics400_classes())  # printed, with the warning
    assert main(["predict", video, "--ckpt", str(tmp_path / "trained.safetensors"), *small]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_lightning_checkpoint_brings_its_views_and_classes(smoke_run):
    loaded = load_model(smoke_run["ckpt"])
    assert loaded.views == EvalViews(num_clips=2, num_frames=16, short_side=64, crop_size=64)
    assert set(loaded.classes) == SMOKE_CLASSES
    assert loaded.untrained_head is None


def test_a_run_trained_with_compile_is_not_compiled_to_predict(smoke_run, tmp_path):
    ckpt = torch.load(smoke_run["ckpt"], weights_only=True)
    ckpt["hyper_parameters"]["compile"] = True
    torch.save(ckpt, tmp_path / "compiled_run.ckpt")
    module = load_model(tmp_path / "compiled_run.ckpt").module
    assert module.hparams.compile is False
    module.configure_model()  # what Trainer.predict calls first
    assert module.backbone.layers[0]._compiled_call_impl is None


def test_prediction_adds_each_blocks_bias_and_mask_once_and_frees_them(smoke_run, tmp_path):
    from videoswinv2.inference import PredictionWriter, predict_videos

    class CacheRecorder(PredictionWriter):
        """Records, after each batch, how many sums every block's bias cache holds."""

        def write_on_batch_end(self, trainer, pl_module, prediction, *args, **kwargs) -> None:
            caches = [block.attn.bias_cache for stage in pl_module.backbone.layers for block in stage.blocks]
            seen.append([None if c is None else [id(v[3]) for v in c.values()] for c in caches])
            super().write_on_batch_end(trainer, pl_module, prediction, *args, **kwargs)

    seen: list[list] = []
    loaded = load_model(smoke_run["ckpt"])
    videos = [str(p) for p in sorted((smoke_run["root"] / "data" / "test").iterdir())[:4]]
    writer = CacheRecorder(str(tmp_path / "out.csv"), classes=loaded.classes, progress=False)
    predict_videos(loaded.module, multi_view_tasks(videos, loaded.views), writer, batch_size=3, num_workers=0)
    assert len(seen) >= 3
    assert all(len(sums) == 1 for sums in seen[0])  # one window size and dtype per block
    assert all(batch == seen[0] for batch in seen)  # the same tensors, reused by every batch
    backbone = loaded.module.backbone
    assert all(block.attn.bias_cache is None for stage in backbone.layers for block in stage.blocks)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_keep_freed_memory_keeps_a_freed_large_tensor_in_the_process():
    """In a fresh process each (the two side by side): how much resident memory freeing a touched
    64 MB tensor gives back."""
    code = (
        "import os, sys, torch\n"
        "from videoswinv2.inference import keep_freed_memory\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "if sys.argv[1] == 'keep': assert keep_freed_memory()\n"
        "x = torch.ones(2**24)\n"
        "before = rss()\n"
        "del x\n"
        "print(before - rss())\n"
    )
    processes = {
        mode: subprocess.Popen(
            [sys.executable, "-c", code, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for mode in ("keep", "default")
    }
    given_back = {}
    for mode, process in processes.items():
        out, err = process.communicate(timeout=600)
        given_back[mode] = int(
            check(subprocess.CompletedProcess(process.args, process.returncode, out, err)).stdout
        )
    assert given_back["default"] > 60 * 2**20  # glibc unmapped it: the next one faults in anew
    assert given_back["keep"] < 2**20  # kept for the next tensor


@pytest.mark.torchcodec
def test_decoding_on_the_gpu_predicts_what_decoding_on_the_cpu_does(
    tmp_path, data_sample_videos, monkeypatch, caplog
):
    # --decode-device cuda decodes with torchcodec on the GPU in the main process; without a GPU
    # it decodes on the CPU, said once in the log. Either way the predictions are the CPU's
    # (NVDEC's colour conversion differs a little).
    import logging

    from videoswinv2 import create_model
    from videoswinv2.checkpoints import save_state_dict
    from videoswinv2.data import decoding

    state_dict = create_model("videoswinv2_tiny").state_dict()
    torch.nn.init.normal_(state_dict["head.fc.bias"])
    save_state_dict(state_dict, tmp_path / "tiny.safetensors")
    monkeypatch.setattr(decoding, "_logged", set())
    video = str(data_sample_videos["carphone_pristine"])
    small = ["--ckpt", str(tmp_path / "tiny.safetensors"), "--model", "videoswinv2_tiny", "--views", "1"]
    small += ["--num-frames", "4", "--short-side", "96", "--crop-size", "96", "--num-workers", "0"]
    assert _predict(video, *small, "--decoder", "torchcodec", "--output", str(tmp_path / "cpu.csv")) == 0
    with caplog.at_level(logging.WARNING, "videoswinv2.data.decoding"):
        assert _predict(video, *small, "--decode-device", "cuda", "--output", str(tmp_path / "gpu.csv")) == 0
    gpu = torch.cuda.is_available()
    assert_same_predictions(
        read_csv(tmp_path / "cpu.csv"), read_csv(tmp_path / "gpu.csv"), 0.05 if gpu else 1e-5
    )
    assert gpu or caplog.messages.count("no CUDA device: decoding on the CPU") == 1
    assert _predict(video, *small, "--decode-device", "cuda", "--decoder", "pyav") == 2
