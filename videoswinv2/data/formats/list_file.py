"""``list``: ``path label_index`` lines (mmaction2 / pytorchvideo); the path may contain spaces.
Such a list names no classes: Kinetics-400's are assumed unless a class names file is given."""

from __future__ import annotations

import logging
from pathlib import Path

from videoswinv2.data.annotations import AnnotationFormat, Annotations, existing_videos
from videoswinv2.data.formats.hmdb51 import HMDB_SPLIT
from videoswinv2.errors import UsageError
from videoswinv2.record import kinetics400_classes

log = logging.getLogger(__name__)


def read_list_file(path: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """``path label_index`` per line, videos under ``root``."""
    path, root = Path(path), Path(root)
    if HMDB_SPLIT.fullmatch(path.name):
        raise UsageError(
            f"{path}:1: an HMDB51 split file (flags 0/1/2, not labels), read as a 'path label_index' "
            "list; give its folder with annotation_format hmdb51"
        )
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


def _assumed_classes(source: Path, split: int) -> list[str]:
    log.warning(
        "%s names no classes: assuming the 400 Kinetics-400 classes; give class_names_file for other datasets",
        source,
    )
    return kinetics400_classes()


# No `detect`: `auto` reads any file no other format claims as a list.
FORMAT = AnnotationFormat(
    "list",
    read=lambda source, root, classes, subset, split: read_list_file(source, root, classes),
    classes=_assumed_classes,
)
