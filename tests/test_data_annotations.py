"""Annotation formats parse to the same videos; bad input gives errors naming the problem."""

import logging
from pathlib import Path

import pytest

from videoswinv2.data import (
    VideoRecord,
    read_annotations,
    read_class_folders,
    read_class_names,
    read_kinetics_csv,
    read_list_file,
)
from videoswinv2.data.formats.class_folders import class_folder_names
from videoswinv2.errors import UsageError
from videoswinv2.record import kinetics400_classes

CLASSES = ["abseiling", "air drumming", "passing American football (in game)"]
HEADER = "label,youtube_id,time_start,time_end,split,is_cc\n"
ROWS = [  # (label, youtube_id, start, end)
    ("abseiling", "-3B32lodo2M", 59, 69),
    ("air drumming", "--nQbRBEz2s", 104, 114),
    ("air drumming", "a-b_c d", 0, 10),
    ("passing American football (in game)", "0GuC6ovQ2lA", 5, 15),
]


def _stem(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{start:06d}_{end:06d}"


def _write_csv(path: Path, rows=ROWS, split: str = "train") -> Path:
    lines = [HEADER] + [f'"{label}",{yid},{start},{end},{split},0\n' for label, yid, start, end in rows]
    path.write_text("".join(lines))
    return path


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_default_classes_are_kinetics400() -> None:
    classes = kinetics400_classes()
    assert len(classes) == 400 and classes[0] == "abseiling" and classes[-1] == "zumba"
    assert "passing American football (in game)" in classes


def test_csv_list_file_and_class_folders_give_the_same_videos(tmp_path: Path) -> None:
    # CVDF-style label folders under the split folder; all three formats point at them.
    expected = []
    for label, yid, start, end in ROWS:
        path = _touch(tmp_path / "train" / label / f"{_stem(yid, start, end)}.mp4")
        expected.append(VideoRecord(str(path), CLASSES.index(label)))
    csv_path = _write_csv(tmp_path / "train.csv")
    list_path = tmp_path / "train_list.txt"
    list_path.write_text("".join(f"{Path(v.path).relative_to(tmp_path)} {v.label}\n" for v in expected))
    from_csv = read_annotations(csv_path, tmp_path, CLASSES)
    from_list = read_annotations(list_path, tmp_path, CLASSES)
    from_folders = read_annotations(tmp_path / "train", tmp_path, CLASSES)
    assert from_csv.videos == expected  # CSV row order
    assert from_list.videos == expected  # list order, paths with spaces included
    assert sorted(from_folders.videos, key=lambda v: v.path) == sorted(expected, key=lambda v: v.path)
    assert from_csv.missing == from_list.missing == from_folders.missing == []


@pytest.mark.parametrize(
    "folder",
    ["train", "train/{label}", "train/{underscored}", "", "{label}", "validate"],
)
def test_csv_finds_videos_in_every_kinetics_layout(folder: str, tmp_path: Path) -> None:
    label, yid, start, end = ROWS[3]
    where = folder.format(label=label, underscored=label.replace(" ", "_"))
    video = _touch(tmp_path / where / f"{_stem(yid, start, end)}.mkv")
    csv_name = "validate.csv" if folder == "validate" else "train.csv"  # split dir from CSV name
    annotations = read_kinetics_csv(
        _write_csv(tmp_path / csv_name, [ROWS[3]], split="val"), tmp_path, CLASSES
    )
    assert annotations.videos == [VideoRecord(str(video), 2)]


def test_missing_files_are_counted_reported_and_left_out(tmp_path: Path, caplog) -> None:
    rows = ROWS * 2
    rows = [(label, f"{yid}{i}", start, end) for i, (label, yid, start, end) in enumerate(rows)]
    for _, yid, start, end in rows[:3]:
        _touch(tmp_path / "train" / f"{_stem(yid, start, end)}.mp4")
    with caplog.at_level(logging.WARNING):
        annotations = read_kinetics_csv(_write_csv(tmp_path / "train.csv", rows), tmp_path, CLASSES)
    assert len(annotations.videos) == 3 and len(annotations.missing) == 5
    assert "5 of 8 listed videos are missing" in caplog.text
    assert _stem(*rows[3][1:]) in caplog.text


def test_list_file_missing_files(tmp_path: Path, caplog) -> None:
    _touch(tmp_path / "a.mp4")
    (tmp_path / "list.txt").write_text("a.mp4 0\nnot there.mp4 1\n\n")
    with caplog.at_level(logging.WARNING):
        annotations = read_list_file(tmp_path / "list.txt", tmp_path, CLASSES)
    assert annotations.videos == [VideoRecord(str(tmp_path / "a.mp4"), 0)]
    assert annotations.missing == [str(tmp_path / "not there.mp4")]
    assert "1 of 2 listed videos are missing" in caplog.text and "not there.mp4" in caplog.text


def test_unknown_label_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "train.csv", [ROWS[0], ("juggling fire", "x", 0, 10)])
    with pytest.raises(
        ValueError, match=r"train\.csv:3: unknown label 'juggling fire': not among the 3 classes"
    ):
        read_kinetics_csv(path, tmp_path, CLASSES)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("abseiling,abc,1.5,11,train", r"time_start '1\.5' is not a whole number"),
        ("abseiling,abc,x,11,train", "time_start 'x' is not a number"),
        ("abseiling,abc,1,-2,train", "time_end '-2' is not a whole number"),
        ("abseiling,abc", "expected at least 4 columns"),
    ],
)
def test_bad_csv_rows(row: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(HEADER + row + "\n")
    with pytest.raises(ValueError, match=rf"train\.csv:2: {message}"):
        read_kinetics_csv(path, tmp_path, CLASSES)


def test_bad_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("youtube_id,label,time_start,time_end\n")
    with pytest.raises(
        ValueError, match=r"train\.csv:1: expected a Kinetics CSV header starting label,youtube_id"
    ):
        read_kinetics_csv(path, tmp_path, CLASSES)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a.mp4 one", "label 'one' is not an integer"),
        ("a.mp4 3", "label 3 is outside the 3 classes"),
        ("a.mp4 -1", "label -1 is outside the 3 classes"),
        ("a.mp4", "expected 'path label_index'"),
    ],
)
def test_bad_list_lines(line: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text(f"b.mp4 0\n{line}\n")
    with pytest.raises(ValueError, match=rf"list\.txt:2: {message}"):
        read_list_file(tmp_path / "list.txt", tmp_path, CLASSES)


def test_pytorchvideo_style_csv_is_read_as_a_list_file(tmp_path: Path) -> None:
    video = _touch(tmp_path / "videos" / "my clip.mp4")
    (tmp_path / "train.csv").write_text(f"{video} 1\n")  # absolute path, space in the name
    assert read_annotations(tmp_path / "train.csv", tmp_path / "elsewhere", CLASSES).videos == [
        VideoRecord(str(video), 1)
    ]


def test_class_folders_reject_unknown_folders_and_ignore_other_files(tmp_path: Path) -> None:
    video = _touch(tmp_path / "air_drumming" / "v.mp4")
    _touch(tmp_path / "air_drumming" / "notes.txt")
    assert read_class_folders(tmp_path, CLASSES).videos == [VideoRecord(str(video), 1)]
    _touch(tmp_path / "juggling" / "w.mp4")
    with pytest.raises(ValueError, match="folder 'juggling' is not a known class name"):
        read_class_folders(tmp_path, CLASSES)


def test_class_folders_read_nested_videos_skip_hidden_ones_and_name_empty_folders(tmp_path: Path) -> None:
    top = _touch(tmp_path / "air_drumming" / "v.mp4")
    nested = _touch(tmp_path / "air_drumming" / "2024" / "day 1" / "w.MP4")
    _touch(tmp_path / "air_drumming" / "._v.mp4")  # macOS resource fork, not a video
    _touch(tmp_path / "air_drumming" / ".cache" / "x.mp4")
    _touch(tmp_path / ".ipynb_checkpoints" / "y.mp4")  # a hidden folder is not a class
    assert class_folder_names(tmp_path) == ["air_drumming"]
    assert read_class_folders(tmp_path, CLASSES).videos == [  # folder by folder, the top one first
        VideoRecord(str(top), 1),
        VideoRecord(str(nested), 1),
    ]
    (tmp_path / "abseiling").mkdir()
    (tmp_path / "passing_American_football_(in_game)" / "empty").mkdir(parents=True)
    with pytest.raises(
        ValueError, match=r"class folder\(s\) 'abseiling', 'passing_American_football_\(in_game\)' hold"
    ):
        read_class_folders(tmp_path, CLASSES)


def test_unlabelled_kinetics_csv_is_refused(tmp_path: Path) -> None:
    (tmp_path / "test.csv").write_text("youtube_id,time_start,time_end,split\nabc,0,10,test\n")
    with pytest.raises(ValueError, match="a Kinetics CSV without labels"):
        read_annotations(tmp_path / "test.csv", tmp_path, CLASSES)


def test_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.csv"):
        read_annotations(tmp_path / "nope.csv", tmp_path, CLASSES)


def test_class_names_file(tmp_path: Path) -> None:
    path = tmp_path / "classes.txt"
    path.write_text("zebra crossing\n\nant farm\n")
    assert read_class_names(path) == ["zebra crossing", "ant farm"]  # file order, not sorted
    path.write_text("a\nb\na\n")
    with pytest.raises(ValueError, match=r"duplicate class names \['a'\]"):
        read_class_names(path)
