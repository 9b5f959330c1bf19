"""Video lists: the official Kinetics CSV, ``path label_index`` list files, class folders, and
class-name files.

Every reader returns an :class:`Annotations`: the videos found, as :class:`VideoRecord` (path and
label index into the class list), and the listed files that are missing (left out, logged with
their count and first names). An unknown label or a malformed row is a ``UsageError`` (a
``ValueError``; the CLI reports it in one line) naming the file, the line and the problem.
``videoswinv2.data.annotation_formats`` reads the other datasets' layouts and picks the reader
(``read_annotations``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from videoswinv2.errors import UsageError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
KINETICS_CSV_COLUMNS = ("label", "youtube_id", "time_start", "time_end")
_SHOWN_MISSING = 5


@dataclass(frozen=True)
class VideoRecord:
    """One video: its file and its label index."""

    path: str
    label: int


@dataclass
class Annotations:
    """The videos of one split, and the listed files that do not exist."""

    videos: list[VideoRecord]
    missing: list[str] = field(default_factory=list)


def find_videos(root: Path, suffixes: Iterable[str] = VIDEO_EXTENSIONS) -> Iterator[Path]:
    """Video files under ``root`` (by suffix, any case; hidden files skipped), relative to it, in
    sorted order, folder by folder. Symlinked folders are followed, each real folder once."""
    suffixes = tuple(suffixes)
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        seen.add(os.path.realpath(folder))
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(folder, d)) not in seen)
        for name in sorted(files):
            if name.lower().endswith(suffixes) and not name.startswith("."):
                yield Path(folder, name).relative_to(root)


_NUMBERED = re.compile(r"(\d+)\s+(\S.*)")


def read_class_names(path: str | Path) -> list[str]:
    """Class names in label order, from one of:

    - one name per line (blank lines ignored), in label order;
    - numbered lines ``1 ApplyEyeMakeup`` (UCF101's ``classInd.txt``): numbered 1, 2, ... or
      0, 1, ... in order, the number is dropped;
    - a JSON object ``{name: id}`` (Something-Something V2's ``labels.json``), in id order, or a
      JSON list of names.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        names = _json_class_names(path, text)
    else:
        names = [line.strip() for line in text.splitlines()]
        names = [name for name in names if name]
        matches = [_NUMBERED.fullmatch(name) for name in names]
        if names and None not in matches:
            numbers = [int(m.group(1)) for m in matches if m]
            if numbers[0] in (0, 1) and numbers == list(range(numbers[0], numbers[0] + len(numbers))):
                names = [m.group(2).strip() for m in matches if m]
    if not names:
        raise UsageError(f"{path}: no class names")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise UsageError(f"{path}: duplicate class names {duplicates}")
    return names


def _json_class_names(path: Path, text: str) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    if isinstance(data, list) and all(isinstance(name, str) for name in data):
        return data
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object {{name: id}} or a list of names")
    try:
        ids = {name: int(value) for name, value in data.items()}
    except (TypeError, ValueError):
        raise UsageError(f"{path}: class ids must be whole numbers, as in SSv2's labels.json") from None
    if sorted(ids.values()) != list(range(len(ids))):
        raise UsageError(f"{path}: class ids must be 0 .. {len(ids) - 1}, each once")
    return sorted(ids, key=ids.__getitem__)


def _label_index(classes: list[str]) -> dict[str, int]:
    """Names as written and with spaces as underscores (the usual label-folder spelling)."""
    index = {name.replace(" ", "_"): i for i, name in enumerate(classes)}
    index.update({name: i for i, name in enumerate(classes)})
    return index


def report_missing(source: Path, missing: list[str], listed: int) -> None:
    if missing:
        log.warning(
            "%s: %d of %d listed videos are missing and left out, e.g. %s",
            source,
            len(missing),
            listed,
            ", ".join(missing[:_SHOWN_MISSING]),
        )


def existing_videos(source: Path, listed: list[tuple[Path, int]]) -> Annotations:
    """The ``(video file, label)`` pairs ``source`` lists whose file exists; the others are left
    out and reported once."""
    videos, missing = [], []
    for video, label in listed:
        if video.is_file():
            videos.append(VideoRecord(str(video), label))
        else:
            missing.append(str(video))
    report_missing(source, missing, len(listed))
    return Annotations(videos, missing)


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def read_class_folders(root: str | Path, classes: list[str]) -> Annotations:
    """``root/<class name>/*.mp4``; folder names as in the class list or with ``_`` for spaces."""
    root = Path(root)
    labels = _label_index(classes)
    videos = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in labels:
            raise UsageError(f"{root}: folder {folder.name!r} is not a known class name")
        label = labels[folder.name]
        videos += [VideoRecord(str(p), label) for p in sorted(folder.iterdir()) if _is_video(p)]
    if not videos:
        raise UsageError(f"{root}: no videos ({'/'.join(VIDEO_EXTENSIONS)}) in class folders")
    return Annotations(videos)


def read_list_file(path: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """``path label_index`` per line (mmaction2 / pytorchvideo); the path may contain spaces."""
    path, root = Path(path), Path(root)
    listed: list[tuple[Path, int]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2:
            raise UsageError(
                f"{path}:{number}: expected 'path label_index' (annotation_format list), got {line.strip()!r}: "
                "a list without labels cannot train or test"
            )
        try:
            label = int(parts[1])
        except ValueError:
            raise UsageError(
                f"{path}:{number}: label {parts[1]!r} is not an integer (annotation_format list: 'path label_index')"
            ) from None
        if not 0 <= label < len(classes):
            raise UsageError(f"{path}:{number}: label {label} is outside the {len(classes)} classes")
        listed.append((root / parts[0], label))
    return existing_videos(path, listed)


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


def index_videos(directories: list[Path]) -> dict[str, str]:
    """File stem -> path for the videos directly in ``directories``; the first one found wins."""
    found: dict[str, str] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                stem, extension = os.path.splitext(entry.name)
                if extension.lower() in VIDEO_EXTENSIONS and entry.is_file():
                    found.setdefault(stem, entry.path)
    return found


def read_kinetics_csv(path: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """The official Kinetics CSV: ``label,youtube_id,time_start,time_end,split[,is_cc]``.

    Each row's file ``{youtube_id}_{start:06d}_{end:06d}.mp4`` (or .mkv/.webm/...) is looked
    up in ``root/<split>/`` (the row's split value, then the CSV's name: ``train.csv`` ->
    ``train/``), then ``root/``, each flat or under label folders (the label as written or with
    ``_`` for spaces), as the CVDF downloads and the ActivityNet crawler lay them out.
    """
    path, root = Path(path), Path(root)
    labels = {name: i for i, name in enumerate(classes)}
    folders = _label_index(classes)
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
    found = index_videos(bases + label_dirs)
    videos, missing = [], []
    for stem, label, _ in records:
        if stem in found:
            videos.append(VideoRecord(found[stem], label))
        else:
            missing.append(stem)
    report_missing(path, missing, len(records))
    return Annotations(videos, missing)
