"""Multi-label layouts (Charades, mmaction2's multi-label list, a ``video,labels`` CSV): every
video's labels (and Charades' times), detection by ``auto``, the classes each names, and errors
naming the file, the line and the format."""

import logging
import math
from pathlib import Path

import pytest

from videoswinv2.data import VideoRecord, dataset_classes, detect_format, read_annotations
from videoswinv2.data.annotations import Action
from videoswinv2.data.formats import is_multi_label
from videoswinv2.data.formats.multilabel_csv import csv_header

CHARADES_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
CHARADES_CLASSES = ["Holding some clothes", "Putting clothes somewhere", "Taking a laptop from somewhere"]


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _charades(root: Path, actions: str = "c001 11.90 21.20;c000 0.00 12.60") -> Path:
    """``root/Charades/Charades_v1_{train,classes}`` and ``root/Charades_v1_480/<id>.mp4``."""
    folder = root / "Charades"
    folder.mkdir(parents=True)
    (folder / "Charades_v1_classes.txt").write_text(
        "".join(f"c{i:03d} {name}\n" for i, name in enumerate(CHARADES_CLASSES))
    )
    rows = [  # scripts and descriptions hold commas and line breaks, quoted
        f'46GP8,HR43,Kitchen,6,7,Yes,"A person cooks, then\nleaves.",food;door,"A person cooks.",{actions},24.83\n',
        'N11GT,0KZ7,Bedroom,7,7,Yes,"A person sits.",bed,"Sits.","",17.54\n',
        "ABC12,0KZ7,Garage,5,6,Yes,Works.,laptop,Works.,c002 3.10 3.10,9.00\n",
        "GONE1,0KZ7,Garage,5,6,Yes,Works.,laptop,Works.,c002 1.00 2.00,9.00\n",
    ]
    (folder / "Charades_v1_train.csv").write_text(CHARADES_HEADER + "".join(rows))
    for video in ("46GP8", "N11GT", "ABC12"):
        _touch(root / "Charades_v1_480" / f"{video}.mp4")
    return folder / "Charades_v1_train.csv"


def test_charades_videos_have_their_actions_with_times(tmp_path: Path, caplog) -> None:
    source = _charades(tmp_path)
    videos = tmp_path / "Charades_v1_480"
    assert detect_format(source) == "charades" and is_multi_label(source)
    classes = dataset_classes(source)
    assert classes == CHARADES_CLASSES  # the names after the ids
    with caplog.at_level(logging.WARNING):
        read = read_annotations(source, videos, classes, "auto", "train")
    assert read.videos == [
        VideoRecord(str(videos / "46GP8.mp4"), actions=(Action(1, 11.9, 21.2), Action(0, 0.0, 12.6))),
        VideoRecord(str(videos / "N11GT.mp4"), actions=()),  # kept: the data module decides
        VideoRecord(str(videos / "ABC12.mp4"), actions=(Action(2, 3.1, 3.1),)),
    ]
    assert read.missing == [str(videos / "GONE1.mp4")] and "1 of 4 listed videos are missing" in caplog.text
    assert read.videos[0].target == {0, 1} and read.videos[0].target_between(0.0, 5.0) == {0}
    # A class names file of the whole `cNNN name` lines, in another order, maps by name.
    lines = [f"c{i:03d} {name}" for i, name in enumerate(CHARADES_CLASSES)][::-1]
    assert [v.target for v in read_annotations(source, videos, lines, "charades").videos] == [
        {1, 2},
        set(),
        {0},
    ]


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ("c009 1.00 2.00", r"action class 'c009' is not in Charades_v1_classes\.txt"),
        ("c001 1.00", r"action 'c001 1\.00': expected 'cNNN start end', seconds with start <= end"),
        ("c001 1.00 x", r"action 'c001 1\.00 x': expected 'cNNN start end'"),
        ("c001 nan 2.0", r"action 'c001 nan 2\.0': expected"),
        (
            "c001 5.00 2.00",
            r"action 'c001 5\.00 2\.00': expected 'cNNN start end', seconds with start <= end",
        ),
    ],
)
def test_a_malformed_charades_action_names_file_and_line(tmp_path: Path, actions: str, message: str) -> None:
    source = _charades(tmp_path, actions)
    with pytest.raises(ValueError, match=rf"Charades_v1_train\.csv:2: {message}"):
        read_annotations(source, tmp_path / "Charades_v1_480", CHARADES_CLASSES)


def test_charades_wrong_uses(tmp_path: Path) -> None:
    source = _charades(tmp_path)
    videos = tmp_path / "Charades_v1_480"
    # Rows after a quoted field spanning two lines are numbered by the file's lines.
    text = source.read_text().replace("c002 3.10 3.10", "c002 3.10 3.00")
    source.write_text(text)
    with pytest.raises(ValueError, match=r"Charades_v1_train\.csv:5: action 'c002 3\.10 3\.00'"):
        read_annotations(source, videos, CHARADES_CLASSES)
    with pytest.raises(ValueError, match=r"action class 'c001': its name is not in class_names_file"):
        read_annotations(source, videos, ["Holding some clothes", "other"], "charades")
    (source.parent / "Charades_v1_classes.txt").write_text("c000 Holding some clothes\nHolding\n")
    with pytest.raises(ValueError, match=r"classes\.txt:2: expected 'cNNN class name' .* got 'Holding'"):
        dataset_classes(source)
    (source.parent / "Charades_v1_classes.txt").unlink()
    with pytest.raises(ValueError, match=r"Charades_v1_classes\.txt does not exist: Charades' class list"):
        dataset_classes(source)
    (tmp_path / "other.csv").write_text("id,label\nx,1\n")
    with pytest.raises(
        ValueError, match=r"other\.csv:1: no actions column in the header: expected a Charades"
    ):
        read_annotations(tmp_path / "other.csv", videos, CHARADES_CLASSES, "charades")


def test_multilabel_list_is_read_when_named(tmp_path: Path) -> None:
    source = tmp_path / "train_multi.txt"
    source.write_text("a/x.mp4 0 2\n\nb.mp4 1\t2 1\nc.mp4\nmissing.mp4 0\n")
    for name in ("a/x.mp4", "b.mp4", "c.mp4"):
        _touch(tmp_path / "videos" / name)
    assert detect_format(source) == "list"  # `a.mp4 3` is a list line too: only by name
    assert is_multi_label(source, "multilabel_list") and not is_multi_label(source)
    classes = ["cat", "dog", "ball"]
    read = read_annotations(source, tmp_path / "videos", classes, "multilabel_list")
    assert read.videos == [
        VideoRecord(str(tmp_path / "videos" / "a/x.mp4"), actions=(Action(0), Action(2))),
        VideoRecord(str(tmp_path / "videos" / "b.mp4"), actions=(Action(1), Action(2))),  # once each
        VideoRecord(str(tmp_path / "videos" / "c.mp4"), actions=()),
    ]
    assert read.videos[0].actions[0].end_s == math.inf  # a list gives no times: the whole video
    with pytest.raises(ValueError, match=r"train_multi\.txt names no classes .* give class_names_file"):
        dataset_classes(source, "multilabel_list")
    source.write_text("a/x.mp4 0\na/x.mp4 3\n")
    with pytest.raises(ValueError, match=r"train_multi\.txt:2: label 3 is outside the 3 classes"):
        read_annotations(source, tmp_path / "videos", classes, "multilabel_list")
    source.write_text("my video.mp4 0\n")
    with pytest.raises(
        ValueError,
        match=r"train_multi\.txt:1: label 'video\.mp4' is not an integer \(annotation_format multilabel_list",
    ):
        read_annotations(source, tmp_path / "videos", classes, "multilabel_list")


def test_multilabel_csv(tmp_path: Path) -> None:
    source = tmp_path / "train.csv"
    source.write_text(
        'video,labels,note\ntrain/a.mp4,"dog;ball",x\ntrain/b.mp4,,\n\ntrain/c.mp4, cat ; dog;dog,\n'
    )
    for name in ("a", "b", "c"):
        _touch(tmp_path / "train" / f"{name}.mp4")
    assert detect_format(source) == "multilabel_csv" and is_multi_label(source)
    classes = dataset_classes(source)
    assert classes == ["ball", "cat", "dog"]  # the names used, sorted
    assert read_annotations(source, tmp_path, classes).videos == [
        VideoRecord(str(tmp_path / "train/a.mp4"), actions=(Action(2), Action(0))),
        VideoRecord(str(tmp_path / "train/b.mp4"), actions=()),
        VideoRecord(str(tmp_path / "train/c.mp4"), actions=(Action(1), Action(2))),
    ]
    with pytest.raises(ValueError, match=r"train\.csv:5: unknown label 'cat': not among the 2 classes"):
        read_annotations(source, tmp_path, ["ball", "dog"])
    (tmp_path / "val.csv").write_text("video,labels\n,dog\n")
    with pytest.raises(ValueError, match=r"val\.csv:2: no video path \(a 'video,labels' CSV"):
        read_annotations(tmp_path / "val.csv", tmp_path, classes)
    (tmp_path / "val.csv").write_text("video\nx.mp4\n")
    assert detect_format(tmp_path / "val.csv") == "list"  # no labels column: not this format
    with pytest.raises(
        ValueError, match=r"val\.csv:1: no labels column in the header: expected a 'video,labels'"
    ):
        read_annotations(tmp_path / "val.csv", tmp_path, classes, "multilabel_csv")
    (tmp_path / "val.csv").write_text("video,labels\nx.mp4,\n")
    with pytest.raises(ValueError, match=r"val\.csv: no labels in any row, so no classes"):
        dataset_classes(tmp_path / "val.csv")


def test_single_label_formats_are_not_multi_label(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("a.mp4 0\n")
    (tmp_path / "k.csv").write_text("label,youtube_id,time_start,time_end,split\n")
    assert not is_multi_label(tmp_path / "train.txt") and not is_multi_label(tmp_path / "k.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00video,labels")  # not UTF-8: no header to detect
    assert csv_header(tmp_path / "binary.csv") == set()
