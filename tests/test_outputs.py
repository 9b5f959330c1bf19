"""Outputs users can trust: files the package did not write are never changed, results of other
settings are never mixed, cut-short rows are redone, and Ctrl-C says how to continue."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_cli, run_cli_in_process

from videoswinv2.cli import main
from videoswinv2.inference import read_rows


@pytest.fixture(scope="module")
def videos(smoke_run, tmp_path_factory) -> list[str]:
    """Three of the smoke run's test videos, in a folder of their own (renamed: YouTube ids may
    start with "-", which a command line takes for an option)."""
    folder = tmp_path_factory.mktemp("videos")
    for k, video in enumerate(sorted((smoke_run["root"] / "data" / "test").rglob("*.mp4"))[:3]):
        shutil.copy(video, folder / f"video {k}.mp4")
    return sorted(str(p) for p in folder.iterdir())


def _run(command: str, smoke_run, *args: str, ckpt: Path | None = None) -> int:
    common = ["--ckpt", str(ckpt or smoke_run["ckpt"]), "--views", "1", "--no-progress", "--num-workers", "0"]
    return main([command, *args, *common])


def _last_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("log.jsonl", '{"level": "info", "msg": "started"}\n{"level": "info", "msg": "done"}\n'),
        ("mine.jsonl", '{"video": "a.mp4", "status": "failed", "reason": "my note"}\n'),
        ("table.csv", "video,score\na.mp4,3\n"),
        ("notes.csv", "some notes, not a table\n"),
    ],
)
def test_predict_never_touches_a_file_it_did_not_write(name, content, smoke_run, videos, tmp_path, capsys):
    output = tmp_path / name
    output.write_text(content)
    for extra in ([], ["--overwrite"]):
        assert _run("predict", smoke_run, *videos, "--output", str(output), *extra) == 2
        last = _last_line(capsys)
        assert f"{output} exists and was not written by videoswinv2 predict" in last
        assert output.read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("overwrite", [False, True])
def test_files_beside_the_output_are_the_users_unless_they_are_its_rank_files(
    overwrite, smoke_run, videos, tmp_path, capsys
) -> None:
    output = tmp_path / "p.csv"
    assert _run("predict", smoke_run, *videos[:1], "--output", str(output)) == 0
    mine = {
        "p.csv.ranking.txt": "notes\n",
        "p.csv.rank-notes.txt": "more notes\n",
        "p.csv.rank1": "not rows of predict, though named like a rank file\n",
        "p.csv.rank2.bak": "a backup\n",
        "p.csv.tmp": "named like a temporary file, and still the user's\n",
    }
    for name, text in mine.items():
        (tmp_path / name).write_text(text)
    # A rank file a killed run on several devices left: the rows of this output, so it is ours.
    header = output.read_text().splitlines()[0]
    (tmp_path / "p.csv.rank0").write_text(header + "\n")
    extra = ["--overwrite"] if overwrite else []
    assert _run("predict", smoke_run, *videos, "--output", str(output), *extra) == 0
    for name, text in mine.items():
        assert (tmp_path / name).read_text() == text, name
    assert not (tmp_path / "p.csv.rank0").exists()
    assert len(read_rows(output)) == len(videos)


def test_a_rerun_with_other_settings_is_refused_and_overwrite_redoes_everything(
    smoke_run, videos, tmp_path, capsys
):
    output = tmp_path / "out.csv"
    assert _run("predict", smoke_run, *videos, "--output", str(output), "--topk", "2") == 0
    first = output.read_bytes()
    other = tmp_path / "other.ckpt"
    checkpoint = torch.load(smoke_run["ckpt"], weights_only=True)
    checkpoint["state_dict"]["backbone.head.fc.bias"] += 1.0
    torch.save(checkpoint, other)
    for args, ckpt, differ in [
        (["--topk", "3"], None, "topk"),
        (["--topk", "2", "--num-frames", "8"], None, "views"),
        (["--topk", "2"], other, "checkpoint_sha256"),
    ]:
        assert _run("predict", smoke_run, *videos, "--output", str(output), *args, ckpt=ckpt) == 2
        last = _last_line(capsys)
        assert f"holds results of other settings ({differ} differ)" in last and "--overwrite" in last
        assert output.read_bytes() == first
    assert _run("predict", smoke_run, *videos, "--output", str(output), "--topk", "3", "--overwrite") == 0
    assert "3 videos done, 0 failed" in capsys.readouterr().err
    assert [len(row) for row in read_rows(output)] == [3 + 2 * 3] * 3


def test_a_row_cut_short_by_a_killed_run_is_redone(smoke_run, videos, tmp_path, capsys):
    output = tmp_path / "out.csv"
    assert _run("predict", smoke_run, *videos, "--output", str(output)) == 0
    whole = output.read_text()
    output.write_text(whole[: whole.rindex(",")])  # the last row ends inside its probabilities
    capsys.readouterr()
    assert _run("predict", smoke_run, *videos, "--output", str(output)) == 0
    assert "1 videos done, 0 failed, 2 skipped" in capsys.readouterr().err
    assert sorted(output.read_text().splitlines()) == sorted(whole.splitlines())


def test_features_of_other_modes_are_not_mixed_and_index_entries_outside_are_ignored(
    smoke_run, videos, tmp_path, capsys
):
    out = tmp_path / "features"
    assert _run("extract-features", smoke_run, *videos, "--output", str(out)) == 0
    index = (out / "index.csv").read_bytes()
    for flag in ("--per-view", "--feature-map"):
        assert _run("extract-features", smoke_run, *videos, "--output", str(out), flag) == 2
        assert f"({flag[2:].replace('-', '_')} differ)" in _last_line(capsys)
        assert (out / "index.csv").read_bytes() == index
    # An index row naming a file outside the folder does not count as done.
    outside = tmp_path / "elsewhere.npy"
    np.save(outside, np.zeros(3, np.float32))
    rows = (out / "index.csv").read_text().splitlines()
    video = rows[1].split(",")[0]
    rows[1] = f"{video},ok,,../elsewhere.npy,3"
    (out / "index.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    assert _run("extract-features", smoke_run, *videos, "--output", str(out)) == 0
    assert "1 videos done, 0 failed, 2 skipped" in capsys.readouterr().err
    assert np.load(outside).tolist() == [0, 0, 0]
    assert {row["feature"] for row in read_rows(out / "index.csv")} == {
        os.path.relpath(p, out) for p in out.rglob("*.npy")
    }


def test_a_folder_of_the_users_files_is_refused(smoke_run, videos, tmp_path, capsys):
    (tmp_path / "my notes.txt").write_text("mine")
    assert _run("extract-features", smoke_run, *videos, "--output", str(tmp_path)) == 2
    assert f"{tmp_path} exists and was not written by videoswinv2 extract-features" in _last_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my notes.txt"]


@pytest.mark.parametrize(
    ("command", "target", "message"),
    [
        ("predict", "folder", "is a folder: name a .csv or .jsonl file"),
        ("extract-features", "file", "is a file"),
    ],
)
def test_an_output_of_the_wrong_kind_is_one_line(
    command, target, message, smoke_run, videos, tmp_path, capsys
):
    output = tmp_path / target
    if target == "folder":
        output.mkdir()
    else:
        output.write_text("mine")
    assert _run(command, smoke_run, videos[0], "--output", str(output)) == 2
    assert message in _last_line(capsys)
    assert target == "folder" or output.read_text() == "mine"


def test_the_same_video_given_twice_is_predicted_once(smoke_run, videos, tmp_path, capsys, monkeypatch):
    folder = Path(videos[0]).parent
    monkeypatch.chdir(folder)
    link = tmp_path / "link.mp4"
    link.symlink_to(videos[0])
    name = Path(videos[0]).name
    output = tmp_path / "out.jsonl"
    assert _run("predict", smoke_run, name, f"./{name}", videos[0], str(link), "--output", str(output)) == 0
    assert "1 videos done, 0 failed" in capsys.readouterr().err
    assert [row["video"] for row in read_rows(output)] == [name]
    assert json.loads((tmp_path / "out.jsonl.videoswinv2.json").read_text())["settings"]["topk"] == 5


def test_ctrl_c_exits_130_and_the_same_command_continues(smoke_run, videos, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    total = 12
    for k in range(total):  # copies, not links: links would be one video
        shutil.copy(videos[k % 3], folder / f"{k:02d}.mp4")
    output = tmp_path / "out.csv"
    command = [sys.executable, "-m", "videoswinv2", "predict", str(folder), "--ckpt", str(smoke_run["ckpt"])]
    command += ["--views", "1", "--num-workers", "1", "--no-progress", "--output", str(output)]
    path = os.pathsep.join(
        filter(None, [str(REPO / "tests" / "interrupt_after_rows"), os.environ.get("PYTHONPATH")])
    )
    hook = {"PYTHONPATH": path, "INTERRUPT_AFTER_ROWS": "2"}  # Ctrl-C once 2 rows are written
    process = run_cli(*command[3:], env=hook, timeout=300)
    done = len(read_rows(output))
    assert process.returncode == 130, process.stderr[-2000:]
    assert (
        process.stderr.strip().splitlines()[-1]
        == "videoswinv2 predict: interrupted: rerun the same command to continue"
    )
    assert 2 <= done < total
    result = run_cli_in_process(*command[3:])  # the same command, continued (no signal: in this process)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{total - done} videos done, 0 failed, {done} skipped" in result.stderr
    assert len(read_rows(output)) == total
