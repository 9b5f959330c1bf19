"""Video lists: the official Kinetics CSV, ``path label_index`` list files, class folders.

Every reader returns an :class:`Annotations`: the videos found, as :class:`VideoRecord` (path and
label index into the class list), and the listed files that are missing (left out, logged with
their count and first names). An unknown label or a malformed row is a ``ValueError`` naming the
file, the line and the problem.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def kinetics400_classes() -> list[str]:
    """The 400 Kinetics-400 class names in their standard (alphabetical) order."""
    from torchvision.models._meta import _KINETICS400_CATEGORIES

    return list(_KINETICS400_CATEGORIES)


def read_class_names(path: str | Path) -> list[str]:
    """Class names, one per line (blank lines ignored); the line order is the label order."""
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8-sig").splitlines()]
    names = [name for name in names if name]
    if not names:
        raise ValueError(f"{path}: no class names")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"{path}: duplicate class names {duplicates}")
    return names


def read_annotations(source: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """Read ``source``, whichever of the three layouts it is.

    - a directory: one folder per class holding its videos;
    - a file whose header starts ``label,youtube_id,time_start,time_end``: the Kinetics CSV,
      with videos looked up under ``root`` (see :func:`read_kinetics_csv`);
    - any other file: ``path label_index`` lines, paths relative to ``root`` unless absolute.
    """
    source = Path(source)
    if source.is_dir():
        return read_class_folders(source, classes)
    if not source.is_file():
        raise FileNotFoundError(f"annotation file {source} does not exist")
    with source.open(encoding="utf-8-sig") as file:
        header = file.readline().strip().lower().replace(" ", "")
    if header.startswith(",".join(KINETICS_CSV_COLUMNS)):
        return read_kinetics_csv(source, root, classes)
    if header.startswith("youtube_id,"):
        raise ValueError(f"{source}: a Kinetics CSV without labels (the unlabelled test set?)")
    return read_list_file(source, root, classes)


def _label_index(classes: list[str]) -> dict[str, int]:
    """Names as written and with spaces as underscores (the usual label-folder spelling)."""
    index = {name.replace(" ", "_"): i for i, name in enumerate(classes)}
    index.update({name: i for i, name in enumerate(classes)})
    return index


def _report_missing(source: Path, missing: list[str], listed: int) -> None:
    if missing:
        log.warning(
            "%s: %d of %d listed videos are missing and left out, e.g. %s",
            source,
            len(missing),
            listed,
            ", ".join(missing[:_SHOWN_MISSING]),
        )


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def read_class_folders(root: str | Path, classes: list[str]) -> Annotations:
    """``root/<class name>/*.mp4``; folder names as in the class list or with ``_`` for spaces."""
    root = Path(root)
    labels = _label_index(classes)
    videos = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in labels:
            raise ValueError(f"{root}: folder {folder.name!r} is not a known class name")
        label = labels[folder.name]
        videos += [VideoRecord(str(p), label) for p in sorted(folder.iterdir()) if _is_video(p)]
    if not videos:
        raise ValueError(f"{root}: no videos ({'/'.join(VIDEO_EXTENSIONS)}) in class folders")
    return Annotations(videos)


def read_list_file(path: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """``path label_index`` per line (mmaction2 / pytorchvideo); the path may contain spaces."""
    path, root = Path(path), Path(root)
    videos, missing, listed = [], [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'path label_index', got {line!r}")
        try:
            label = int(parts[1])
        except ValueError:
            raise ValueError(f"{path}:{number}: label {parts[1]!r} is not an integer") from None
        if not 0 <= label < len(classes):
            raise ValueError(f"{path}:{number}: label {label} is outside the {len(classes)} classes")
        listed += 1
        video = root / parts[0]
        if video.is_file():
            videos.append(VideoRecord(str(video), label))
        else:
            missing.append(str(video))
    _report_missing(path, missing, listed)
    return Annotations(videos, missing)


def kinetics_file_stem(youtube_id: str, time_start: int, time_end: int) -> str:
    """The Kinetics file name without extension: ``{youtube_id}_{start:06d}_{end:06d}``."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}"


def _seconds(value: str, column: str, where: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: {column} {value!r} is not a number") from None
    if number != int(number) or number < 0:
        raise ValueError(f"{where}: {column} {value!r} is not a whole number of seconds")
    return int(number)


def _index_videos(directories: list[Path]) -> dict[str, str]:
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
    header = [column.strip().lower() for column in rows[0]]
    if tuple(header[:4]) != KINETICS_CSV_COLUMNS:
        raise ValueError(f"{path}: header must start with {','.join(KINETICS_CSV_COLUMNS)}")
    split_column = header.index("split") if "split" in header else None
    records: list[tuple[str, int, str]] = []  # (stem, label, split) per row
    for number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        where = f"{path}:{number}"
        if len(row) < len(KINETICS_CSV_COLUMNS):
            raise ValueError(f"{where}: expected at least 4 columns, got {row}")
        label = row[0].strip()
        if label not in labels:
            raise ValueError(
                f"{where}: unknown label {label!r}: not among the {len(classes)} classes "
                "(for other datasets than Kinetics-400, give a class names file)"
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
    found = _index_videos(bases + label_dirs)
    videos, missing = [], []
    for stem, label, _ in records:
        if stem in found:
            videos.append(VideoRecord(found[stem], label))
        else:
            missing.append(stem)
    _report_missing(path, missing, len(records))
    return Annotations(videos, missing)
