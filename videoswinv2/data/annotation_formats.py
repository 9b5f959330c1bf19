"""The annotation layouts of the datasets people fine-tune on, as their archives unpack, and the one
entry point that reads any of them.

``annotation_format`` names the layout of a split's annotation source:

- ``kinetics_csv``: the official Kinetics-400/600/700 CSV (``label,youtube_id,...``);
- ``list``: ``path label_index`` lines (mmaction2 / pytorchvideo);
- ``class_folders``: a folder of class folders (``train/<class>/<video>``);
- ``ucf101``: ``ucfTrainTestlist/`` (or one of its lists): ``classInd.txt`` (``1 ApplyEyeMakeup``),
  ``trainlist0N.txt`` (``Class/v_Class_g08_c01.avi 1``, labels 1-based) and ``testlist0N.txt``
  (paths only: the class is the path's folder); CRLF line ends;
- ``hmdb51``: ``testTrainMulti_7030_splits/``, files ``<class>_test_split<N>.txt`` of lines
  ``<video>.avi <flag>`` (1 train, 2 test, 0 unused); classes in alphabetical order, as mmaction2;
- ``ssv2``: Something-Something V2's ``train.json`` / ``validation.json`` (``{id, label, template,
  placeholders}``; the class is the template without brackets, a key of ``labels.json`` beside
  them); videos ``<id>.webm``, found by their stem whatever the container;
- ``auto``: the one layout a source can be (a ``.json`` file is SSv2's, a folder holding
  ``classInd.txt`` UCF101's, ...), see :func:`detect_format`.

A source that does not match its format is a ``UsageError`` (a ``ValueError``) naming the file, the line (or JSON
entry) and the format expected. Lists without labels (UCF101's test lists used for training,
SSv2's ``test.json``, a Kinetics test CSV without labels) are refused the same way.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from pathlib import Path
from typing import Literal

from videoswinv2.data.annotations import (
    KINETICS_CSV_COLUMNS,
    Annotations,
    VideoRecord,
    existing_videos,
    index_videos,
    read_class_folders,
    read_class_names,
    read_kinetics_csv,
    read_list_file,
    report_missing,
)
from videoswinv2.errors import UsageError
from videoswinv2.record import kinetics400_classes

log = logging.getLogger(__name__)

AnnotationFormat = Literal["auto", "kinetics_csv", "list", "class_folders", "ucf101", "hmdb51", "ssv2"]
Subset = Literal["train", "val", "test"]
ANNOTATION_FORMATS: tuple[str, ...] = (
    "auto",
    "kinetics_csv",
    "list",
    "class_folders",
    "ucf101",
    "hmdb51",
    "ssv2",
)

# Something-Something V2 classes that a horizontal flip turns into each other.
SSV2_MIRRORED_CLASSES: tuple[tuple[str, str], ...] = (
    ("Pulling something from left to right", "Pulling something from right to left"),
    ("Pushing something from left to right", "Pushing something from right to left"),
    ("Turning the camera left while filming something", "Turning the camera right while filming something"),
)

_UCF_LIST = re.compile(r"(train|test)list\d+\.txt")
_HMDB_SPLIT = re.compile(r"(.+)_test_split(\d+)\.txt")
_UCF_CLASSES = "classInd.txt"
_SSV2_CLASSES = "labels.json"


def detect_format(source: str | Path) -> str:
    """The layout of ``source``, where only one fits; ``list`` for any other text file."""
    source = Path(source)
    if source.is_dir():
        names = os.listdir(source)
        if _UCF_CLASSES in names:
            return "ucf101"
        if any(_HMDB_SPLIT.fullmatch(name) for name in names):
            return "hmdb51"
        return "class_folders"
    if not source.is_file():
        raise UsageError(f"annotation file {source} does not exist")
    if source.suffix.lower() == ".json":
        return "ssv2"
    if _UCF_LIST.fullmatch(source.name) and (source.parent / _UCF_CLASSES).is_file():
        return "ucf101"
    if _HMDB_SPLIT.fullmatch(source.name):
        raise UsageError(
            f"{source}:1: one HMDB51 split file ('video.avi flag' lines); give the folder that holds "
            "them all (testTrainMulti_7030_splits) with annotation_format hmdb51"
        )
    with source.open(encoding="utf-8-sig") as file:
        header = file.readline().strip().lower().replace(" ", "")
    if header.startswith(",".join(KINETICS_CSV_COLUMNS)):
        return "kinetics_csv"
    if header.startswith("youtube_id,"):
        raise UsageError(f"{source}:1: a Kinetics CSV without labels (the unlabelled test set?)")
    return "list"


def _resolve(source: Path, annotation_format: str) -> str:
    if annotation_format not in ANNOTATION_FORMATS:
        raise UsageError(f"annotation_format must be one of {ANNOTATION_FORMATS}, got {annotation_format!r}")
    if annotation_format == "auto":
        return detect_format(source)
    if not source.exists():
        raise UsageError(f"annotation file {source} does not exist")
    return annotation_format


def read_annotations(
    source: str | Path,
    root: str | Path,
    classes: list[str],
    annotation_format: str = "auto",
    subset: Subset = "train",
    split: int = 1,
) -> Annotations:
    """The videos of one split: ``source`` read as ``annotation_format``, videos under ``root``.

    ``subset`` says what the split is for (UCF101's and HMDB51's split files hold train and test
    together; a test list is refused for training) and ``split`` which official split (1-3) a
    UCF101 / HMDB51 folder gives.
    """
    source = Path(source)
    kind = _resolve(source, annotation_format)
    if kind == "class_folders":
        if not source.is_dir():
            raise UsageError(
                f"{source}: expected a folder of class folders (annotation_format class_folders)"
            )
        return read_class_folders(source, classes)
    if kind in ("kinetics_csv", "list", "ssv2") and source.is_dir():
        raise UsageError(f"{source}: a folder, where annotation_format {kind} reads a file")
    if kind == "kinetics_csv":
        return read_kinetics_csv(source, root, classes)
    if kind == "list":
        if _HMDB_SPLIT.fullmatch(source.name):
            raise UsageError(
                f"{source}:1: an HMDB51 split file (flags 0/1/2, not labels), read as a 'path label_index' "
                "list; give its folder with annotation_format hmdb51"
            )
        return read_list_file(source, root, classes)
    if kind == "ucf101":
        return read_ucf101(source, root, classes, subset, split)
    if kind == "hmdb51":
        return read_hmdb51(source, root, classes, subset, split)
    return read_ssv2(source, root, classes)


def dataset_classes(source: str | Path, annotation_format: str = "auto", split: int = 1) -> list[str]:
    """The class list a dataset defines, for when no class names file is given: UCF101's
    ``classInd.txt``, HMDB51's split-file names (sorted), SSv2's ``labels.json``, a class-folder
    root's folder names (sorted), a Kinetics CSV's labels (Kinetics-400's 400 names if they all are
    Kinetics-400 classes, else the CSV's labels sorted, as the official K600/K700 lists are). A
    ``path label_index`` list names no classes: Kinetics-400's are assumed, with a warning."""
    source = Path(source)
    kind = _resolve(source, annotation_format)
    if kind == "class_folders":
        names = sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not names:
            raise UsageError(f"{source}: no class folders (annotation_format class_folders)")
        return names
    if kind == "kinetics_csv":
        return _kinetics_csv_classes(source)
    if kind == "ucf101":
        return read_class_names((source if source.is_dir() else source.parent) / _UCF_CLASSES)
    if kind == "hmdb51":
        return sorted(_hmdb_split_files(source, split))
    if kind == "ssv2":
        return read_class_names(source.parent / _SSV2_CLASSES)
    log.warning(
        "%s names no classes: assuming the 400 Kinetics-400 classes; give class_names_file for other datasets",
        source,
    )
    return kinetics400_classes()


def _kinetics_csv_classes(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        labels = {row[0].strip() for row in list(csv.reader(file))[1:] if row and row[0].strip()}
    kinetics400 = kinetics400_classes()
    return kinetics400 if labels <= set(kinetics400) else sorted(labels)


# -- UCF101 ---------------------------------------------------------------------------------------


def read_ucf101(
    source: str | Path, root: str | Path, classes: list[str], subset: Subset = "train", split: int = 1
) -> Annotations:
    """UCF101's official lists; ``source`` is ``ucfTrainTestlist/`` (``trainlist0{split}.txt`` for
    training, ``testlist0{split}.txt`` otherwise) or one list. Each video's class is its path's
    folder, which must agree with the 1-based label of a train list line."""
    source, root = Path(source), Path(root)
    if source.is_dir():
        if not (source / _UCF_CLASSES).is_file():
            raise UsageError(
                f"{source}: no {_UCF_CLASSES}: not UCF101's ucfTrainTestlist folder (annotation_format ucf101)"
            )
        source = source / f"{'train' if subset == 'train' else 'test'}list{split:02d}.txt"
        if not source.is_file():
            raise UsageError(f"UCF101 split file {source} does not exist (split {split})")
    if subset == "train" and source.name.startswith("testlist"):
        raise UsageError(f"{source}: UCF101's test list, refused for training: train on its trainlist")
    labels = {name: i for i, name in enumerate(classes)}
    listed: list[tuple[Path, int]] = []
    for number, line in enumerate(source.read_text(encoding="utf-8-sig").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = f"{source}:{number}"
        folder = parts[0].replace("\\", "/").split("/")[0]
        if len(parts) > 2 or "/" not in parts[0].replace("\\", "/") or folder not in labels:
            raise UsageError(
                f"{where}: expected 'Class/v_Class_gGG_cCC.avi [label]' with a class of {_UCF_CLASSES} "
                f"(annotation_format ucf101), got {line.strip()!r}"
            )
        if len(parts) == 2:
            if not parts[1].isdigit() or int(parts[1]) != labels[folder] + 1:
                raise UsageError(
                    f"{where}: label {parts[1]!r} disagrees with the folder {folder!r}, class "
                    f"{labels[folder] + 1} of {_UCF_CLASSES} (UCF101 labels are 1-based)"
                )
        listed.append((root / parts[0], labels[folder]))
    return existing_videos(source, listed)


# -- HMDB51 ---------------------------------------------------------------------------------------

_HMDB_FLAGS = {"train": "1", "val": "2", "test": "2"}


def _hmdb_split_files(source: Path, split: int) -> dict[str, Path]:
    """Class name -> its split file, for split ``split`` of the folder ``source``."""
    if not source.is_dir():
        raise UsageError(
            f"{source}: HMDB51's split files are read from their folder (testTrainMulti_7030_splits), "
            "not one by one (annotation_format hmdb51)"
        )
    files = {}
    for path in sorted(source.iterdir()):
        match = _HMDB_SPLIT.fullmatch(path.name)
        if match and int(match.group(2)) == split:
            files[match.group(1)] = path
    if not files:
        raise UsageError(f"{source}: no '<class>_test_split{split}.txt' files (annotation_format hmdb51)")
    return files


def read_hmdb51(
    source: str | Path, root: str | Path, classes: list[str], subset: Subset = "train", split: int = 1
) -> Annotations:
    """HMDB51's split folder: flag 1 videos train, flag 2 videos validate and test, flag 0 videos
    are not used; videos are ``root/<class>/<video>.avi``."""
    source, root = Path(source), Path(root)
    labels = {name: i for i, name in enumerate(classes)}
    wanted = _HMDB_FLAGS[subset]
    listed: list[tuple[Path, int]] = []
    for name, path in _hmdb_split_files(source, split).items():
        if name not in labels:
            raise UsageError(f"{path}: class {name!r} is not among the {len(classes)} classes")
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise UsageError(
                    f"{path}:{number}: expected '<video>.avi <0|1|2>' (annotation_format hmdb51), got {line.strip()!r}"
                )
            if parts[1] != wanted:
                continue
            listed.append((root / name / parts[0], labels[name]))
    return existing_videos(source, listed)


# -- Something-Something V2 -----------------------------------------------------------------------


def ssv2_label(template: str) -> str:
    """The class of a row: its template without the brackets ("Pushing [something] from left to
    right" -> "Pushing something from left to right")."""
    return template.replace("[", "").replace("]", "")


def read_ssv2(source: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """SSv2's ``train.json`` / ``validation.json``; videos ``root/<id>.<any video suffix>``."""
    source, root = Path(source), Path(root)
    try:
        rows = json.loads(source.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{source}:{error.lineno}: not JSON ({error.msg}) (annotation_format ssv2)"
        ) from None
    if not isinstance(rows, list):
        raise UsageError(
            f"{source}: expected a JSON list of {{id, label, template, placeholders}} (annotation_format ssv2)"
        )
    labels = {name: i for i, name in enumerate(classes)}
    found = index_videos([root])
    videos, missing = [], []
    for number, row in enumerate(rows, start=1):
        where = f"{source}: entry {number}"
        if not isinstance(row, dict) or "id" not in row:
            raise UsageError(
                f"{where}: expected {{id, label, template, placeholders}} (annotation_format ssv2), got {row!r}"
            )
        if "template" not in row:
            raise UsageError(
                f"{where} (id {row['id']}): no label: an unlabelled list (SSv2's test.json has no public "
                "labels) cannot train or test; use validation.json"
            )
        label = ssv2_label(str(row["template"]))
        if label not in labels:
            raise UsageError(
                f"{where} (id {row['id']}): class {label!r} is not in {_SSV2_CLASSES}'s {len(classes)}"
            )
        stem = str(row["id"])
        if stem in found:
            videos.append(VideoRecord(found[stem], labels[label]))
        else:
            missing.append(str(root / f"{stem}.webm"))
    report_missing(source, missing, len(rows))
    return Annotations(videos, missing)
