"""``charades``: Charades v1 as unpacked: ``Charades_v1_train.csv`` / ``Charades_v1_test.csv``
(``id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length``;
``actions`` is ``c092 11.90 21.20;c147 0.00 12.60``, class id, start and end in seconds, or
empty), ``Charades_v1_classes.txt`` beside them (``c000 Holding some clothes``, 157 lines) and the
videos ``Charades_v1_480/<id>.mp4``, found by their stem. Multi-label: a video has its actions."""

from __future__ import annotations

import math
import re
from pathlib import Path

from videoswinv2.data.annotations import Action, AnnotationFormat, Annotations, existing_videos, index_videos
from videoswinv2.data.formats.multilabel_csv import csv_header, csv_rows
from videoswinv2.errors import UsageError

CHARADES_CLASSES = "Charades_v1_classes.txt"
_COLUMNS = ("id", "actions")
_LAYOUT = "a Charades CSV with id and actions columns (annotation_format charades)"
_CLASS_LINE = re.compile(r"(c\d+)\s+(\S.*)")


def charades_class_ids(path: str | Path) -> dict[str, str]:
    """Class id -> name in file order, from ``Charades_v1_classes.txt`` (``c000 Holding some
    clothes``: the name is what follows the id)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"{path} does not exist: Charades' class list, beside its CSVs, names the actions' "
            "class ids (annotation_format charades)"
        )
    ids: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        match = _CLASS_LINE.fullmatch(line.strip())
        if not match or match.group(1) in ids:
            problem = "a repeated class id" if match else "expected 'cNNN class name'"
            raise UsageError(f"{path}:{number}: {problem} (Charades' class list), got {line.strip()!r}")
        ids[match.group(1)] = match.group(2).strip()
    if not ids:
        raise UsageError(f"{path}: no classes")
    return ids


def _action(text: str, labels: dict[str, int | None], where: str) -> Action:
    """``c092 11.90 21.20`` -> ``Action(label, 11.9, 21.2)``."""
    parts = text.split()
    try:
        start, end = (float(part) for part in parts[1:]) if len(parts) == 3 else (math.nan, math.nan)
    except ValueError:
        start = end = math.nan
    if not (math.isfinite(start) and math.isfinite(end) and start <= end):
        raise UsageError(
            f"{where}: action {text.strip()!r}: expected 'cNNN start end', seconds with start <= end "
            "(annotation_format charades)"
        )
    if parts[0] not in labels:
        raise UsageError(f"{where}: action class {parts[0]!r} is not in {CHARADES_CLASSES}")
    label = labels[parts[0]]
    if label is None:
        raise UsageError(f"{where}: action class {parts[0]!r}: its name is not in class_names_file")
    return Action(label, start, end)


def read_charades(source: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """Each row's video ``root/<id>.<any video suffix>`` with its actions (none: ``actions=()``),
    their classes found by id in ``Charades_v1_classes.txt`` beside ``source``, then by name (or
    by the whole ``cNNN name`` line) in ``classes``. Action ends past the video's length, which the
    CSVs hold, are kept: no clip reaches them."""
    source, root = Path(source), Path(root)
    rows = list(csv_rows(source, _COLUMNS, _LAYOUT))  # the header is checked first
    index = {name: i for i, name in enumerate(classes)}
    names = charades_class_ids(source.parent / CHARADES_CLASSES)
    labels = {i: index.get(name, index.get(f"{i} {name}")) for i, name in names.items()}
    listed = []
    for where, (video_id, actions) in rows:
        if not video_id:
            raise UsageError(f"{where}: no video id ({_LAYOUT})")
        parts = [part for part in actions.split(";") if part.strip()]
        listed.append((root / f"{video_id}.mp4", tuple(_action(part, labels, where) for part in parts)))
    return existing_videos(source, listed, index_videos([root]))


FORMAT = AnnotationFormat(
    "charades",
    read=lambda source, root, classes, subset, split: read_charades(source, root, classes),
    classes=lambda source, split: list(charades_class_ids(source.parent / CHARADES_CLASSES).values()),
    detect=lambda source: set(_COLUMNS) <= csv_header(source),
    multi_label=True,
)
