"""Official layouts of UCF101, HMDB51, Something-Something V2, Kinetics-600/700 and class folders,
written as their archives unpack: the right class for every video, the right split, and errors
that name the file, the line and the format for anything else."""

import json
import logging
from pathlib import Path

import pytest

from videoswinv2.data import (
    VideoRecord,
    dataset_classes,
    detect_format,
    read_annotations,
    read_class_names,
)
from videoswinv2.errors import UsageError
from videoswinv2.record import kinetics400_classes

UCF_CLASSES = ["ApplyEyeMakeup", "Archery", "YoYo"]  # classInd.txt order = label order


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _ucf101(root: Path) -> Path:
    """``root/UCF-101/<Class>/*.avi`` and ``root/ucfTrainTestlist/`` with CRLF line ends, 1-based."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_bytes(
        b"".join(f"{i} {name}\r\n".encode() for i, name in enumerate(UCF_CLASSES, start=1))
    )
    train = [("ApplyEyeMakeup", "g08_c01", 1), ("YoYo", "g09_c02", 3), ("Archery", "g10_c03", 2)]
    test = [("Archery", "g01_c01"), ("YoYo", "g02_c04")]
    (lists / "trainlist01.txt").write_bytes(
        b"".join(f"{c}/v_{c}_{g}.avi {label}\r\n".encode() for c, g, label in train)
    )
    (lists / "testlist01.txt").write_bytes(b"".join(f"{c}/v_{c}_{g}.avi\r\n".encode() for c, g in test))
    (lists / "trainlist02.txt").write_bytes(b"Archery/v_Archery_g01_c01.avi 2\r\n")
    for c, g, *_ in [*train, *test]:
        _touch(root / "UCF-101" / c / f"v_{c}_{g}.avi")
    return lists


def test_ucf101_official_lists(tmp_path: Path) -> None:
    lists = _ucf101(tmp_path)
    videos = tmp_path / "UCF-101"
    assert detect_format(lists) == "ucf101" and detect_format(lists / "trainlist01.txt") == "ucf101"
    assert read_class_names(lists / "classInd.txt") == UCF_CLASSES  # numbers dropped
    classes = dataset_classes(lists)
    assert classes == UCF_CLASSES
    train = read_annotations(lists, videos, classes, "ucf101", "train").videos
    # 1-based labels: "YoYo ... 3" is class index 2, the last class, as 101 is in the full set.
    assert [(Path(v.path).parent.name, classes[v.label]) for v in train] == [
        ("ApplyEyeMakeup", "ApplyEyeMakeup"),
        ("YoYo", "YoYo"),
        ("Archery", "Archery"),
    ]
    # The unlabelled test list: the class is the path's folder, checked against classInd.txt.
    test = read_annotations(lists, videos, classes, "auto", "test").videos
    assert test == [
        VideoRecord(str(videos / "Archery" / "v_Archery_g01_c01.avi"), 1),
        VideoRecord(str(videos / "YoYo" / "v_YoYo_g02_c04.avi"), 2),
    ]
    assert read_annotations(lists / "testlist01.txt", videos, classes, "ucf101", "val").videos == test
    assert [v.label for v in read_annotations(lists, videos, classes, "ucf101", "train", split=2).videos] == [
        1
    ]


def test_ucf101_wrong_uses_are_errors_naming_file_line_and_format(tmp_path: Path) -> None:
    lists = _ucf101(tmp_path)
    videos = tmp_path / "UCF-101"
    with pytest.raises(ValueError, match=r"testlist01\.txt: UCF101's test list, refused for training"):
        read_annotations(lists / "testlist01.txt", videos, UCF_CLASSES, "ucf101", "train")
    with pytest.raises(
        ValueError, match=r"testlist01\.txt:1: expected 'path label_index' \(annotation_format list\)"
    ):
        read_annotations(lists / "testlist01.txt", videos, UCF_CLASSES, "list", "test")
    # A 1-based train list read as 0-based: the last label is out of range, never silently shifted.
    with pytest.raises(ValueError, match=r"trainlist01\.txt:2: label 3 is outside the 3 classes"):
        read_annotations(lists / "trainlist01.txt", videos, UCF_CLASSES, "list", "train")
    (lists / "trainlist03.txt").write_text("Archery/v_Archery_g01_c01.avi 1\n")
    with pytest.raises(
        ValueError, match=r"trainlist03\.txt:1: label '1' disagrees with the folder 'Archery'"
    ):
        read_annotations(lists, videos, UCF_CLASSES, "ucf101", "train", split=3)
    (lists / "trainlist03.txt").write_text("Juggling/v_Juggling_g01_c01.avi 1\n")
    with pytest.raises(
        ValueError, match=r"trainlist03\.txt:1: expected 'Class/v_Class_gGG_cCC\.avi \[label\]'"
    ):
        read_annotations(lists, videos, UCF_CLASSES, "ucf101", "train", split=3)
    with pytest.raises(UsageError, match=r"trainlist04\.txt"):
        read_annotations(lists, videos, UCF_CLASSES, "ucf101", "train", split=4)


HMDB = {  # class -> split 1 lines (video, flag); written in this order, read alphabetically
    "wave": [("wave_a.avi", 1), ("wave_b.avi", 2), ("wave_c.avi", 0)],
    "brush_hair": [("brush_a.avi", 2), ("brush_b.avi", 1), ("brush_c.avi", 1)],
    "cartwheel": [("cart_a.avi", 0), ("cart_b.avi", 1), ("cart_c.avi", 2)],
}


def _hmdb51(root: Path) -> Path:
    """``root/<class>/*.avi`` and ``root/testTrainMulti_7030_splits/<class>_test_split{1,2}.txt``."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for name, lines in HMDB.items():
        # The official files end every line with a space; split 2 swaps train and test.
        (splits / f"{name}_test_split1.txt").write_text("".join(f"{v} {flag} \n" for v, flag in lines))
        swapped = {0: 0, 1: 2, 2: 1}
        (splits / f"{name}_test_split2.txt").write_text("".join(f"{v} {swapped[f]} \n" for v, f in lines))
        for video, _ in lines:
            _touch(root / name / video)
    return splits


def test_hmdb51_split_files(tmp_path: Path) -> None:
    splits = _hmdb51(tmp_path)
    assert detect_format(splits) == "hmdb51"
    classes = dataset_classes(splits)
    assert classes == ["brush_hair", "cartwheel", "wave"]  # alphabetical, as mmaction2

    def read(subset: str, split: int = 1) -> set[tuple[str, str]]:
        videos = read_annotations(splits, tmp_path, classes, "hmdb51", subset, split).videos
        return {(Path(v.path).name, classes[v.label]) for v in videos}

    flag = {(video, name): f for name, lines in HMDB.items() for video, f in lines}
    assert read("train") == {(v, c) for (v, c), f in flag.items() if f == 1}
    assert read("val") == read("test") == {(v, c) for (v, c), f in flag.items() if f == 2}
    assert read("train", split=2) == read("test")  # split 2 swapped the flags
    unused = {v for (v, _), f in flag.items() if f == 0}
    assert not unused & {v for v, _ in read("train") | read("test")}  # flag 0 is never used
    assert read_annotations(splits, tmp_path, classes, "hmdb51", "train").videos[0] == VideoRecord(
        str(tmp_path / "brush_hair" / "brush_b.avi"), 0
    )


def test_a_class_missing_its_hmdb51_split_file_is_named_not_dropped(tmp_path: Path) -> None:
    splits = _hmdb51(tmp_path)
    (splits / "cartwheel_test_split1.txt").unlink()  # its folder and split 2 file are there
    with pytest.raises(ValueError, match=r"cartwheel_test_split1\.txt missing, while other splits' files"):
        dataset_classes(splits)
    assert dataset_classes(splits, split=2) == ["brush_hair", "cartwheel", "wave"]


def test_hmdb51_wrong_uses_are_errors_naming_file_line_and_format(tmp_path: Path) -> None:
    splits = _hmdb51(tmp_path)
    classes = dataset_classes(splits)
    split_file = splits / "wave_test_split1.txt"
    # The reported bug: a split file read as a `path label_index` list turns flags into labels.
    with pytest.raises(
        ValueError, match=r"wave_test_split1\.txt:1: an HMDB51 split file .* annotation_format hmdb51"
    ):
        read_annotations(split_file, tmp_path / "wave", classes, "list")
    with pytest.raises(ValueError, match=r"wave_test_split1\.txt:1: one HMDB51 split file"):
        read_annotations(split_file, tmp_path, classes)
    with pytest.raises(ValueError, match="not one by one"):
        read_annotations(split_file, tmp_path, classes, "hmdb51")
    split_file.write_text("wave_a.avi 1 \nwave_b.avi 3 \n")
    with pytest.raises(
        ValueError,
        match=r"wave_test_split1\.txt:2: expected '<video>\.avi <0\|1\|2>' \(annotation_format hmdb51\)",
    ):
        read_annotations(splits, tmp_path, classes, "hmdb51", "train")
    with pytest.raises(ValueError, match=r"no '<class>_test_split3\.txt' files"):
        dataset_classes(splits, "hmdb51", split=3)


SSV2_LABELS = {  # name -> id, as labels.json holds them (ids are strings, not in name order)
    "Pushing something from left to right": "2",
    "Putting something on a surface": "0",
    "Pushing something from right to left": "1",
}


def _ssv2(root: Path) -> Path:
    """``root/labels/{labels,train,validation,test}.json`` and ``root/20bn-something-something-v2/<id>.webm``."""
    labels = root / "labels"
    labels.mkdir(parents=True)
    (labels / "labels.json").write_text(json.dumps(SSV2_LABELS, indent=1))

    def row(video_id: int, template: str, placeholders: list[str]) -> dict:
        text = template
        for thing in placeholders:
            text = text.replace("[something]", thing, 1)
        return {
            "id": str(video_id),
            "label": text.lower(),
            "template": template,
            "placeholders": placeholders,
        }

    train = [
        row(78687, "Pushing [something] from left to right", ["a red cup"]),
        row(42326, "Putting [something] on a surface", ["keys"]),
        row(100904, "Pushing [something] from right to left", ["a pen"]),
    ]
    validation = [row(74225, "Putting [something] on a surface", ["a box"])]
    (labels / "train.json").write_text(json.dumps(train))
    (labels / "validation.json").write_text(json.dumps(validation))
    (labels / "test.json").write_text(json.dumps([{"id": "1420"}, {"id": "88"}]))
    videos = root / "20bn-something-something-v2"
    for entry in [*train[:2], *validation]:
        _touch(videos / f"{entry['id']}.webm")
    _touch(videos / "100904.mp4")  # re-encoded to another container: found by its stem
    return labels


def test_an_ssv2_entry_without_template_is_named_not_taken_for_an_unlabelled_list(tmp_path: Path) -> None:
    labels = _ssv2(tmp_path)
    rows = json.loads((labels / "train.json").read_text())
    del rows[1]["template"]
    (labels / "train.json").write_text(json.dumps(rows))
    classes = read_class_names(labels / "labels.json")
    with pytest.raises(
        ValueError, match=rf"train\.json: entry 2 \(id {rows[1]['id']}\): no template, so no class"
    ):
        read_annotations(labels / "train.json", tmp_path / "20bn-something-something-v2", classes, "ssv2")


def test_ssv2_json_files(tmp_path: Path, caplog) -> None:
    labels = _ssv2(tmp_path)
    videos = tmp_path / "20bn-something-something-v2"
    assert detect_format(labels / "train.json") == "ssv2"
    classes = dataset_classes(labels / "train.json")
    assert classes == [  # labels.json's id order
        "Putting something on a surface",
        "Pushing something from right to left",
        "Pushing something from left to right",
    ]
    assert read_class_names(labels / "labels.json") == classes
    train = read_annotations(labels / "train.json", videos, classes, "ssv2").videos
    assert train == [
        VideoRecord(str(videos / "78687.webm"), 2),
        VideoRecord(str(videos / "42326.webm"), 0),
        VideoRecord(str(videos / "100904.mp4"), 1),
    ]
    assert read_annotations(labels / "validation.json", videos, classes).videos == [
        VideoRecord(str(videos / "74225.webm"), 0)
    ]
    (videos / "42326.webm").unlink()
    with caplog.at_level(logging.WARNING):
        assert len(read_annotations(labels / "train.json", videos, classes).videos) == 2
    assert "1 of 3 listed videos are missing" in caplog.text and "42326.webm" in caplog.text


def test_ssv2_wrong_uses_are_errors_naming_file_entry_and_format(tmp_path: Path) -> None:
    labels = _ssv2(tmp_path)
    videos = tmp_path / "20bn-something-something-v2"
    classes = dataset_classes(labels / "train.json")
    for subset in ("train", "test"):
        with pytest.raises(
            ValueError, match=r"test\.json: entry 1 \(id 1420\): no label: an unlabelled list"
        ):
            read_annotations(labels / "test.json", videos, classes, "ssv2", subset)
    (labels / "bad.json").write_text('[\n{"id": "1",\n "template": oops}]')
    with pytest.raises(ValueError, match=r"bad\.json:3: not JSON .* \(annotation_format ssv2\)"):
        read_annotations(labels / "bad.json", videos, classes)
    (labels / "bad.json").write_text(json.dumps([{"id": "5", "template": "Juggling [something]"}]))
    with pytest.raises(
        ValueError, match=r"bad\.json: entry 1 \(id 5\): class 'Juggling something' is not in labels\.json"
    ):
        read_annotations(labels / "bad.json", videos, classes)
    with pytest.raises(
        ValueError, match=r"train\.json:1: label .* is not an integer \(annotation_format list"
    ):
        read_annotations(labels / "train.json", videos, classes, "list")


HEADER = "label,youtube_id,time_start,time_end,split\n"


def test_kinetics_csv_classes_come_from_the_csv(tmp_path: Path) -> None:
    # Kinetics-700 adds classes to Kinetics-400's: the list is the CSV's labels, sorted.
    k700 = tmp_path / "train.csv"
    k700.write_text(HEADER + "zumba,a,0,10,train\nadjusting glasses,b,1,11,train\nabseiling,c,2,12,train\n")
    assert dataset_classes(k700) == ["abseiling", "adjusting glasses", "zumba"]
    # A Kinetics-400 CSV (even a part of one) keeps the 400 Kinetics-400 names.
    k400 = tmp_path / "k400.csv"
    k400.write_text(HEADER + "zumba,a,0,10,train\nabseiling,c,2,12,train\n")
    assert dataset_classes(k400) == kinetics400_classes()


def test_class_folders_give_their_sorted_names(tmp_path: Path) -> None:
    for name in ("walk", "Run", "jump", ".cache"):
        (tmp_path / "train" / name).mkdir(parents=True)
    assert detect_format(tmp_path / "train") == "class_folders"
    assert dataset_classes(tmp_path / "train") == ["Run", "jump", "walk"]


def test_a_list_names_no_classes_and_says_kinetics400_is_assumed(tmp_path: Path, caplog) -> None:
    (tmp_path / "train.txt").write_text("a.mp4 0\n")
    with caplog.at_level(logging.WARNING):
        assert dataset_classes(tmp_path / "train.txt") == kinetics400_classes()
    assert "assuming the 400 Kinetics-400 classes" in caplog.text


def test_a_source_that_is_not_its_format(tmp_path: Path) -> None:
    _touch(tmp_path / "list.txt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(
        ValueError, match=r"list\.txt:1: expected a Kinetics CSV header .* \(annotation_format kinetics_csv\)"
    ):
        read_annotations(tmp_path / "list.txt", tmp_path, ["a"], "kinetics_csv")
    with pytest.raises(ValueError, match=r"folder: a folder, where annotation_format ssv2 reads a file"):
        read_annotations(tmp_path / "folder", tmp_path, ["a"], "ssv2")
    with pytest.raises(ValueError, match=r"folder: no classInd\.txt: not UCF101's ucfTrainTestlist folder"):
        read_annotations(tmp_path / "folder", tmp_path, ["a"], "ucf101")
    with pytest.raises(ValueError, match="annotation_format must be one of"):
        read_annotations(tmp_path / "list.txt", tmp_path, ["a"], "kinetics")


def test_numbered_class_files_and_json_class_lists(tmp_path: Path) -> None:
    path = tmp_path / "classes.txt"
    path.write_text("0 zero\n1 one\n2 two\n")  # 0-based numbering is dropped too
    assert read_class_names(path) == ["zero", "one", "two"]
    path.write_text("3 legged race\nabseiling\n")  # names that happen to start with a number stay
    assert read_class_names(path) == ["3 legged race", "abseiling"]
    path.write_text("1 ApplyEyeMakeup\n2 ApplyLipstick\n4 Archery\n")  # a numbering gap
    with pytest.raises(
        ValueError, match=r"classes\.txt:3: class number 4, expected 3: a numbered class list"
    ):
        read_class_names(path)
    path = tmp_path / "labels.json"
    path.write_text('{"a": "0", "b": "2"}')
    with pytest.raises(ValueError, match=r"class ids must be 0 \.\. 1"):
        read_class_names(path)
    path.write_text('["x", "y"]')
    assert read_class_names(path) == ["x", "y"]
