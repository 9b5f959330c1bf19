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
    label_index,
)
from videoswinv2.errors import UsageError


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def _folder(source: Path) -> Path:
    if not source.is_dir():
        raise UsageError(f"{source}: expected a folder of class folders (annotation_format class_folders)")
    return source


def read_class_folders(root: str | Path, classes: list[str]) -> Annotations:
    """``root/<class name>/*.mp4``."""
    root = _folder(Path(root))
    labels = label_index(classes)
    videos = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in labels:
            raise UsageError(f"{root}: folder {folder.name!r} is not a known class name")
        label = labels[folder.name]
        videos += [VideoRecord(str(p), label) for p in sorted(folder.iterdir()) if _is_video(p)]
    if not videos:
        raise UsageError(f"{root}: no videos ({'/'.join(VIDEO_EXTENSIONS)}) in class folders")
    return Annotations(videos)


def class_folder_names(source: Path) -> list[str]:
    names = sorted(p.name for p in _folder(source).iterdir() if p.is_dir() and not p.name.startswith("."))
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
