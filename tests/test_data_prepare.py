"""`videoswinv2 prepare`: a folder re-encoded in parallel, upright, small, resumable, with a report."""

import csv
import json
from pathlib import Path

import av
import pytest
import torch
import torch.nn.functional as F

from videoswinv2.cli import main
from videoswinv2.data import KineticsDataModule, open_video
from videoswinv2.data.offline.prepare import PrepareSettings, output_size, prepare_dataset


def test_output_size_keeps_the_aspect_and_never_upscales() -> None:
    assert output_size(1280, 720, 256) == (456, 256)
    assert output_size(720, 1280, 256) == (256, 456)
    assert output_size(340, 256, 320) == (340, 256)  # already smaller: kept
    assert output_size(641, 361, 256) == (454, 256)  # even sides for 4:2:0


def _all_frames(path) -> torch.Tensor:
    with open_video(str(path)) as reader:
        return reader.read(list(range(reader.num_frames)))


def test_prepare_a_folder_with_two_workers(
    data_make_numbered_video, data_frame_numbers, tmp_path, capsys
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "class a").mkdir(parents=True)
    (src / "class b").mkdir()
    data_make_numbered_video(src / "class a" / "numbered.mp4", 50, gop=250)  # one GOP, B-frames
    data_make_numbered_video(src / "class b" / "phone.mp4", 40, rotation=-90)  # stored 120x64, shown 64x120
    data_make_numbered_video(src / "class b" / "clip.webm", 30)  # H.264 comes back as Matroska
    (src / "class b" / "broken.mp4").write_text("not a video\n")
    (src / "lists").mkdir()
    (src / "lists" / "train.txt").write_text("class a/numbered.mp4 0\nclass b/phone.mp4 1\n")

    results = prepare_dataset(src, dst, PrepareSettings(short_side=32, gop=8), workers=2)

    assert {r.path.split("/src/")[1]: r.status for r in results} == {
        "class a/numbered.mp4": "done",
        "class b/broken.mp4": "failed",
        "class b/clip.webm": "done",
        "class b/phone.mp4": "done",
    }
    assert (dst / "lists" / "train.txt").read_text() == (src / "lists" / "train.txt").read_text()
    with (dst / "prepare_report.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(row["path"], row["kind"]) for row in rows] == [("class b/broken.mp4", "unreadable")]
    assert "broken.mp4" in rows[0]["reason"]
    assert not (dst / "class b" / "broken.mp4").exists()
    outputs = {"class a/numbered.mp4": 50, "class b/phone.mp4": 40, "class b/clip.webm": 30}
    for name, count in outputs.items():
        frames = _all_frames(dst / name)
        # Short side 32, upright, every frame kept in order (read back at the numbers' size).
        assert frames.shape == (count, 32, 60, 3), name
        big = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(64, 120), mode="nearest")
        assert data_frame_numbers(big.permute(0, 2, 3, 1)) == list(range(count)), name
        with av.open(str(dst / name)) as container:
            assert len(container.streams) == 1  # video only
            packets = [p for p in container.demux(video=0) if p.size]
        keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
        assert (
            keyframes[0] == 0 and max(b - a for a, b in zip(keyframes, [*keyframes[1:], len(packets)])) <= 8
        )
        assert [p.pts for p in packets] == sorted(
            p.pts for p in packets
        )  # no B-frames: decode order = display order

    before = {name: (dst / name).stat().st_mtime_ns for name in outputs}
    assert main(["prepare", str(src), str(dst), "--short-side", "32", "--gop", "8", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "prepared 0 videos, skipped 3 already prepared, 1 failed" in out
    assert {name: (dst / name).stat().st_mtime_ns for name in outputs} == before


def test_output_inside_the_source_is_refused(data_make_numbered_video, tmp_path) -> None:
    data_make_numbered_video(tmp_path / "a.mp4", 5)
    with pytest.raises(ValueError, match="must not be inside"):
        prepare_dataset(tmp_path, tmp_path / "prepared")


def _official_layouts(root, make_video) -> None:
    """UCF101 (XviD-like MPEG-4 in .avi, 25 fps, CRLF lists) and SSv2 (VP9 .webm, 12 fps) as unpacked."""
    lists = root / "ucf101" / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_bytes(b"1 Archery\r\n2 YoYo\r\n")
    (lists / "trainlist01.txt").write_bytes(
        b"Archery/v_Archery_g08_c01.avi 1\r\nYoYo/v_YoYo_g08_c01.avi 2\r\n"
    )
    (lists / "testlist01.txt").write_bytes(b"YoYo/v_YoYo_g01_c01.avi\r\n")
    for name in ("Archery/v_Archery_g08_c01", "YoYo/v_YoYo_g08_c01", "YoYo/v_YoYo_g01_c01"):
        (root / "ucf101" / "UCF-101" / name).parent.mkdir(parents=True, exist_ok=True)
        make_video(root / "ucf101" / "UCF-101" / f"{name}.avi", 30, fps=25)
    labels = root / "ssv2" / "labels"
    labels.mkdir(parents=True)
    (labels / "labels.json").write_text('{"Moving something up": "0", "Moving something down": "1"}')
    rows = [("11", "Moving [something] up"), ("12", "Moving [something] down")]
    (labels / "train.json").write_text(
        json.dumps([{"id": i, "label": t, "template": t, "placeholders": ["a cup"]} for i, t in rows])
    )
    (labels / "validation.json").write_text((labels / "train.json").read_text())
    (root / "ssv2" / "20bn-something-something-v2").mkdir()
    for video_id, _ in rows:
        make_video(root / "ssv2" / "20bn-something-something-v2" / f"{video_id}.webm", 30, fps=12)


def test_prepared_official_layouts_work_with_their_list_files(
    data_make_numbered_video, data_frame_numbers, tmp_path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _official_layouts(src, data_make_numbered_video)
    results = prepare_dataset(src, dst, PrepareSettings(gop=8), workers=2)
    assert [r.status for r in results] == ["done"] * 5
    small = dict(num_frames=4, train_crop_size=32, val_short_side=32, val_crop_size=32, num_workers=0)
    datasets = {
        "ucf101": dict(
            annotation_format="ucf101",
            video_dir="UCF-101",
            **{f"{s}_annotations": "ucfTrainTestlist" for s in ("train", "val", "test")},
        ),
        "ssv2": dict(
            train_annotations="labels/train.json",
            val_annotations="labels/validation.json",
            test_annotations="labels/validation.json",
            video_dir="20bn-something-something-v2",
            frame_sampling="segments",
            num_test_clips=1,
        ),
    }
    for name, settings in datasets.items():
        records = {}
        for root in (src, dst):
            dm = KineticsDataModule(str(root / name), **settings, **small)
            dm.setup("fit")
            records[root] = [
                (str(Path(v.path).relative_to(root)), v.label) for v in dm.datasets["train"].videos
            ]
            assert dm.num_classes == 2
            assert dm.datasets["train"][0]["video"][0].shape == (3, 4, 32, 32)
        assert records[src] == records[dst] and len(records[dst]) == 2, name
    # The copies hold every frame, in order: .avi stays AVI (with H.264), .webm holds H.264 in Matroska.
    for video in ("ucf101/UCF-101/YoYo/v_YoYo_g01_c01.avi", "ssv2/20bn-something-something-v2/11.webm"):
        assert data_frame_numbers(_all_frames(dst / video)) == list(range(30)), video
        with av.open(str(dst / video)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
    assert (dst / "ucf101" / "ucfTrainTestlist" / "trainlist01.txt").read_bytes().count(b"\r\n") == 2


def _one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("videoswinv2 prepare: error: "), lines
    return lines[0]


def test_files_prepare_did_not_write_are_never_touched(data_make_numbered_video, tmp_path, capsys) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    data_make_numbered_video(src / "a.mp4", 8)
    data_make_numbered_video(src / "b.mp4", 8)
    (src / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n")
    dst.mkdir()
    (dst / "train.csv").write_text("the user's own list\n")
    data_make_numbered_video(dst / "b.mp4", 3)  # another video of the same name: not "already prepared"
    (dst / "notes.md").write_text("unrelated: prepare would not write here, so it is no obstacle\n")
    before = {p.name: p.read_bytes() for p in dst.iterdir()}
    args = ["prepare", str(src), str(dst), "--short-side", "32", "--workers", "1"]
    assert main(args) == 2
    assert "holds 2 files that prepare did not write where it would write its own (b.mp4, train.csv)" in (
        _one_line_error(capsys)
    )
    assert {p.name: p.read_bytes() for p in dst.iterdir()} == before
    # Into prepare's own earlier output it goes on, and a file the user changed since is theirs.
    (dst / "train.csv").unlink()
    (dst / "b.mp4").unlink()
    assert main(args) == 0
    assert "prepared 2 videos" in capsys.readouterr().out
    assert main(args) == 0
    assert "prepared 0 videos, skipped 2 already prepared" in capsys.readouterr().out
    (dst / "train.csv").write_text("edited by the user\n")
    assert main(args) == 2
    assert "(train.csv)" in _one_line_error(capsys)
    assert (dst / "train.csv").read_text() == "edited by the user\n"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("dst inside src", "must not be inside the dataset"),
        ("missing src", "does not exist"),
        ("no videos", "no videos"),
        ("negative workers", "workers must be >= 1, got -1"),
        ("dst is a file", "is a file: name a folder"),
    ],
)
def test_bad_arguments_end_in_one_line_with_exit_2(
    case, expected, data_make_numbered_video, tmp_path, capsys
):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    if case != "no videos":
        data_make_numbered_video(src / "a.mp4", 4)
    workers = "-1" if case == "negative workers" else "1"
    if case == "dst inside src":
        dst = src / "prepared"
    if case == "missing src":
        src = tmp_path / "absent"
    if case == "dst is a file":
        dst.write_text("a file")
    assert main(["prepare", str(src), str(dst), "--workers", workers]) == 2
    assert expected in _one_line_error(capsys)


def test_fifos_are_reported_and_symlinked_folders_followed(data_make_numbered_video, tmp_path) -> None:
    import os

    src, elsewhere = tmp_path / "src", tmp_path / "elsewhere"
    src.mkdir()
    elsewhere.mkdir()
    data_make_numbered_video(elsewhere / "linked.mp4", 4)
    (src / "class").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(elsewhere, target_is_directory=True)  # followed once, not forever
    os.mkfifo(src / "pipe.mp4")  # opening it would wait for a writer forever
    results = prepare_dataset(src, tmp_path / "dst", PrepareSettings(short_side=32), workers=1)
    assert {(r.path.split("/src/")[1], r.status, r.kind) for r in results} == {
        ("class/linked.mp4", "done", ""),
        ("pipe.mp4", "failed", "not_a_file"),
    }
    report = (tmp_path / "dst" / "prepare_report.csv").read_text()
    assert "pipe.mp4,not_a_file," in report


def test_ctrl_c_exits_130_and_leaves_no_partial_file(data_make_numbered_video, tmp_path, capsys, monkeypatch):
    import videoswinv2.data.offline.prepare as preparing

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    data_make_numbered_video(src / "a.mp4", 4)
    data_make_numbered_video(src / "b.mp4", 4)

    def interrupted(self, n=1):  # Ctrl-C after the first video, while a worker writes the second
        (dst / ".b.partial.mp4").write_bytes(b"half a video")
        raise KeyboardInterrupt

    monkeypatch.setattr(preparing.tqdm, "update", interrupted)
    assert main(["prepare", str(src), str(dst), "--workers", "1"]) == 130
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("videoswinv2 prepare: interrupted: rerun the same command to continue")
    )
    assert not list(dst.glob(".*.partial.*"))
