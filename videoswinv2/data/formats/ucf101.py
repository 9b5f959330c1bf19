"""``ucf101``: ``ucfTrainTestlist/`` (or one of its lists): ``classInd.txt`` (``1 ApplyEyeMakeup``),
``trainlist0N.txt`` (``Class/v_Class_g08_c01.avi 1``, labels 1-based) and ``testlist0N.txt`` (paths
only: the class is the path's folder); CRLF line ends."""

from __future__ import annotations

import re
from pathlib import Path

from videoswinv2.data.annotations import (
    AnnotationFormat,
    Annotations,
    Subset,
    existing_videos,
    read_class_names,
)
from videoswinv2.errors import UsageError

_UCF_LIST = re.compile(r"(train|test)list\d+\.txt")
_UCF_CLASSES = "classInd.txt"


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


def _is_ucf101(source: Path) -> bool:
    """The list folder (it holds ``classInd.txt``) or one of its lists."""
    if source.is_dir():
        return (source / _UCF_CLASSES).is_file()
    return bool(_UCF_LIST.fullmatch(source.name)) and (source.parent / _UCF_CLASSES).is_file()


FORMAT = AnnotationFormat(
    "ucf101",
    read=read_ucf101,
    classes=lambda source, split: read_class_names(
        (source if source.is_dir() else source.parent) / _UCF_CLASSES
    ),
    detect=_is_ucf101,
    folder=True,
)
