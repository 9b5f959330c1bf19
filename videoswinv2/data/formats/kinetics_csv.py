"""``kinetics_csv``: the official Kinetics-400/600/700 CSV,
``label,youtube_id,time_start,time_end,split[,is_cc]``, videos named
``{youtube_id}_{start:06d}_{end:06d}.mp4``, flat or in label folders."""

from __future__ import annotations

import csv
from pathlib import Path

from videoswinv2.data.annotations import (
    AnnotationFormat,
    Annotations,
    existing_videos,
    index_videos,
    label_index,
)
from videoswinv2.errors import UsageError
from videoswinv2.record import kinetics400_classes

KINETICS_CSV_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def kinetics_file_stem(youtube_id: str, time_start: int, time_end: int) -> str:
    """The Kinetics file name without extension: ``{youtube_id}_{start:06d}_{end:06d}``."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}"


def _seconds(value: str, column: str, where: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{where}: {column} {value!r} is not a number") from None
    if number != int(number) or number < 0:
        raise UsageError(f"{where}: {column} {value!r} is not a whole number of seconds")
    return int(number)


def read_kinetics_csv(path: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """The official Kinetics CSV: each row's ``{youtube_id}_{start:06d}_{end:06d}`` video (any
    suffix) is looked up in ``root/<split>/`` (the row's split, then the CSV's name), then
    ``root/``, each flat or under label folders, as the CVDF downloads and ActivityNet's crawler
    lay them out."""
    path, root = Path(path), Path(root)
    labels = {name: i for i, name in enumerate(classes)}
    folders = label_index(classes)
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = list(csv.reader(file))
    header = [column.strip().lower() for column in rows[0]] if rows else []
    if tuple(header[:4]) != KINETICS_CSV_COLUMNS:
        raise UsageError(
            f"{path}:1: expected a Kinetics CSV header starting {','.join(KINETICS_CSV_COLUMNS)} "
            f"(annotation_format kinetics_csv), got {','.join(rows[0]) if rows else 'an empty file'!r}"
        )
    split_column = header.index("split") if "split" in header else None
    records: list[tuple[str, int, str]] = []  # (stem, label, split) per row
    for number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        where = f"{path}:{number}"
        if len(row) < len(KINETICS_CSV_COLUMNS):
            raise UsageError(f"{where}: expected at least 4 columns, got {row}")
        label = row[0].strip()
        if label not in labels:
            raise UsageError(
                f"{where}: unknown label {label!r}: not among the {len(classes)} classes "
                "(the class list is class_names_file's, or else the training CSV's labels)"
            )
        stem = kinetics_file_stem(
            row[1].strip(),
            _seconds(row[2].strip(), "time_start", where),
            _seconds(row[3].strip(), "time_end", where),
        )
        split = row[split_column].strip() if split_column is not None and len(row) > split_column else ""
        records.append((stem, labels[label], split))
    split_dirs = list(dict.fromkeys(s for s in [*(r[2] for r in records), path.stem] if s))
    bases = [root / split for split in split_dirs] + [root]
    label_dirs = [
        sub
        for base in bases
        if base.is_dir()
        for sub in sorted(base.iterdir())
        if sub.is_dir() and sub.name in folders
    ]
    listed = [(Path(stem), label) for stem, label, _ in records]
    return existing_videos(path, listed, index_videos(bases + label_dirs))


def kinetics_csv_classes(path: Path) -> list[str]:
    """Kinetics-400's 400 names if every label is a Kinetics-400 class, else the labels sorted
    (as the official Kinetics-600/700 lists are)."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        labels = {row[0].strip() for row in list(csv.reader(file))[1:] if row and row[0].strip()}
    kinetics400 = kinetics400_classes()
    return kinetics400 if labels <= set(kinetics400) else sorted(labels)


def is_kinetics_csv(source: Path) -> bool:
    """A file whose header starts with the Kinetics columns; one without labels is refused."""
    if not source.is_file():
        return False
    with source.open(encoding="utf-8-sig") as file:
        header = file.readline().strip().lower().replace(" ", "")
    if header.startswith("youtube_id,"):
        raise UsageError(f"{source}:1: a Kinetics CSV without labels (the unlabelled test set?)")
    return header.startswith(",".join(KINETICS_CSV_COLUMNS))


FORMAT = AnnotationFormat(
    "kinetics_csv",
    read=lambda source, root, classes, subset, split: read_kinetics_csv(source, root, classes),
    classes=lambda source, split: kinetics_csv_classes(source),
    detect=is_kinetics_csv,
)
