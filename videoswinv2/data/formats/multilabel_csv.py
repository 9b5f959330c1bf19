"""``multilabel_csv``: a CSV of your own multi-label videos whose header names ``video`` (a path
under the video folder) and ``labels`` (class names separated by ``;``, possibly none), e.g.
``train/a.mp4,"dog;ball"``; other columns are ignored. Without a class names file the classes are
the names the file uses, sorted."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from videoswinv2.data.annotations import (
    Action,
    AnnotationFormat,
    Annotations,
    existing_videos,
    label_index,
)
from videoswinv2.errors import UsageError

_COLUMNS = ("video", "labels")
_LAYOUT = "a 'video,labels' CSV, labels separated by ';' (annotation_format multilabel_csv)"


def csv_header(path: Path) -> set[str]:
    """The column names of the CSV ``path``'s first row, lower case; none for a file that is not
    UTF-8 text (``auto`` asks every file)."""
    if not path.is_file():
        return set()
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            return {column.strip().lower() for column in next(csv.reader(file), [])}
    except (UnicodeDecodeError, csv.Error):
        return set()


def csv_rows(path: Path, columns: tuple[str, ...], layout: str) -> Iterator[tuple[str, list[str]]]:
    """``(file:line, the values of columns)`` for each non-blank row of the CSV ``path``, whose
    header names ``columns`` in any order and case; ``layout`` names the format in errors. The line
    is where the row starts (a quoted field may span lines)."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = [column.strip().lower() for column in next(reader, [])]
        missing = [column for column in columns if column not in header]
        if missing:
            raise UsageError(
                f"{path}:1: no {' or '.join(missing)} column in the header: expected {layout}, "
                f"got {','.join(header) or 'an empty file'!r}"
            )
        indices = [header.index(column) for column in columns]
        start = reader.line_num + 1
        for row in reader:
            where, start = f"{path}:{start}", reader.line_num + 1
            if not "".join(row).strip():
                continue
            if len(row) <= max(indices):
                raise UsageError(f"{where}: {len(row)} columns where the header has {len(header)} ({layout})")
            yield where, [row[i].strip() for i in indices]


def _names(labels: str) -> list[str]:
    return list(dict.fromkeys(name.strip() for name in labels.split(";") if name.strip()))


def read_multilabel_csv(path: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """Each row's ``root/<video>`` with one whole-video :class:`Action` per label name."""
    path, root = Path(path), Path(root)
    labels = label_index(classes)
    listed = []
    for where, (video, names) in csv_rows(path, _COLUMNS, _LAYOUT):
        if not video:
            raise UsageError(f"{where}: no video path ({_LAYOUT})")
        row_names = _names(names)
        for name in row_names:
            if name not in labels:
                raise UsageError(
                    f"{where}: unknown label {name!r}: not among the {len(classes)} classes "
                    "(the class list is class_names_file's, or else the training CSV's labels)"
                )
        listed.append((root / video, tuple(Action(labels[name]) for name in row_names)))
    return existing_videos(path, listed)


def multilabel_csv_classes(path: Path) -> list[str]:
    """Every label name the CSV uses, sorted."""
    names = {name for _, (_, labels) in csv_rows(path, _COLUMNS, _LAYOUT) for name in _names(labels)}
    if not names:
        raise UsageError(f"{path}: no labels in any row, so no classes: give class_names_file")
    return sorted(names)


FORMAT = AnnotationFormat(
    "multilabel_csv",
    read=lambda source, root, classes, subset, split: read_multilabel_csv(source, root, classes),
    classes=lambda source, split: multilabel_csv_classes(source),
    detect=lambda source: set(_COLUMNS) <= csv_header(source),
    multi_label=True,
)
