"""``class_folders``: a folder of class folders, ``train/<class>/<video>``; folder names as in
the class list or with ``_`` for spaces. Without a class names file the classes are the folder
names, sorted."""

from __future__ import annotations

from pathlib import Path

from videoswinv2.data.annotations import (
    VIDEO_EXTENSIONS,
    AnnotationFormat,
    Annotations,
    VideoRecord,
    find_videos,
    label_index,
)
from videoswinv2.errors import UsageError


def _folder(source: Path) -> Path:
    if not source.is_dir():
        raise UsageError(f"{source}: expected a folder of class folders (annotation_format class_folders)")
    return source


def read_class_folders(root: str | Path, classes: list[str]) -> Annotations:
    """``root/<class name>/**/*.mp4``: a class folder's videos at any depth below it. Hidden files
    and folders (``.*``, macOS's ``._*``) are skipped, as everywhere; an empty class folder is an
    error naming it."""
    root = _folder(Path(root))
    labels = label_index(classes)
    videos, empty = [], []
    for folder in _class_folders(root):
        if folder.name not in labels:
            raise UsageError(f"{root}: folder {folder.name!r} is not a known class name")
        found = [VideoRecord(str(folder / p), labels[folder.name]) for p in find_videos(folder)]
        empty += [] if found else [folder.name]
        videos += found
    if empty:
        raise UsageError(
            f"{root}: class folder(s) {', '.join(map(repr, empty))} hold no videos "
            f"({'/'.join(VIDEO_EXTENSIONS)}): add videos or remove the folder"
        )
    if not videos:
        raise UsageError(f"{root}: no videos ({'/'.join(VIDEO_EXTENSIONS)}) in class folders")
    return Annotations(videos)


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_folder_names(source: Path) -> list[str]:
    names = [p.name for p in _class_folders(_folder(source))]
    if not names:
        raise UsageError(f"{source}: no class folders (annotation_format class_folders)")
    return names


# No `detect`: `auto` reads any folder no other format claims as class folders.
FORMAT = AnnotationFormat(
    "class_folders",
    read=lambda source, root, classes, subset, split: read_class_folders(source, classes),
    classes=lambda source, split: class_folder_names(source),
    folder=True,
)
