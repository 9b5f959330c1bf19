"""What every annotation format (``videoswinv2.data.formats``) gives and the helpers they share:
videos and labels, the :class:`AnnotationFormat` a format registers, class-name files, video
lookup. An unknown label or a malformed row is a ``UsageError`` naming the file and line.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from videoswinv2.errors import UsageError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
_SHOWN_MISSING = 5


# What a video (or clip) is labelled with: a class index, or a multi-label video's set of classes
# (a frozenset: hashable, and kept as it is by DataLoader collation, which turns tuples into lists).
Target = int | frozenset[int]


def target_classes(target: Target) -> frozenset[int]:
    """The classes of a target: a class index alone, or a multi-label target's as they are."""
    return frozenset({target}) if isinstance(target, int) else target


@dataclass(frozen=True)
class Action:
    """One action of a multi-label video: class ``label`` from ``start_s`` to ``end_s`` seconds
    (the whole video by default: a list that gives no times)."""

    label: int
    start_s: float = 0.0
    end_s: float = math.inf


@dataclass(frozen=True)
class VideoRecord:
    """One video: its file and its class index (single-label), or its actions (multi-label:
    ``actions`` is not None, ``label`` is -1; a video may have no action)."""

    path: str
    label: int = -1
    actions: tuple[Action, ...] | None = None

    @property
    def multi_label(self) -> bool:
        return self.actions is not None

    @property
    def target(self) -> Target:
        """The class index, or the classes of every action (a test video's labels)."""
        return self.label if self.actions is None else frozenset(a.label for a in self.actions)

    def target_between(self, start_s: float, end_s: float) -> Target:
        """The target of the stretch ``[start_s, end_s)``: the class index, or the classes of the
        actions that overlap it (a training clip's labels, as PySlowFast's Charades)."""
        if self.actions is None:
            return self.label
        return frozenset(a.label for a in self.actions if a.start_s < end_s and a.end_s > start_s)


@dataclass
class Annotations:
    """The videos of one split, and the listed files that do not exist."""

    videos: list[VideoRecord]
    missing: list[str] = field(default_factory=list)


Subset = Literal["train", "val", "test"]


@dataclass(frozen=True)
class AnnotationFormat:
    """A dataset layout (see ``videoswinv2.data.formats``).

    Args:
        name: the ``annotation_format`` value that picks it.
        read: ``(source, root, classes, subset, split) -> Annotations``: the videos of one split
            under ``root``, labelled by index into ``classes``; ``subset`` ("train", "val" or
            "test") and ``split`` (an official split number) serve layouts holding several splits.
        classes: ``(source, split) -> names`` in label order, when no class names file is given.
        detect: ``source -> bool``: whether ``auto`` reads this existing file or folder as this
            format (None: only when named); a ``UsageError`` for a source it cannot read as given.
        folder: the source may be a folder; otherwise a folder is refused before reading.
        multi_label: its videos have several labels each (``VideoRecord.actions``).
    """

    name: str
    read: Callable[[Path, Path, list[str], Subset, int], Annotations]
    classes: Callable[[Path, int], list[str]]
    detect: Callable[[Path], bool] | None = None
    folder: bool = False
    multi_label: bool = False


def find_videos(root: Path, suffixes: Iterable[str] = VIDEO_EXTENSIONS) -> Iterator[Path]:
    """Video files under ``root`` (by suffix, any case; hidden files and folders skipped),
    relative to it, in sorted order, folder by folder. Symlinked folders are followed, each real
    folder once."""
    suffixes = tuple(suffixes)
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        seen.add(os.path.realpath(folder))
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(folder, d)) not in seen
        )
        for name in sorted(files):
            if name.lower().endswith(suffixes) and not name.startswith("."):
                yield Path(folder, name).relative_to(root)


_NUMBERED = re.compile(r"(\d+)\s+(\S.*)")


def read_class_names(path: str | Path) -> list[str]:
    """Class names in label order: one per line (blank lines ignored), numbered lines ``1
    ApplyEyeMakeup`` counting from 0 or 1 without gaps (UCF101's ``classInd.txt``), a JSON object
    ``{name: id}`` (SSv2's ``labels.json``) or a JSON list of names."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        names = _json_class_names(path, text)
    else:
        names = [line.strip() for line in text.splitlines()]
        names = [name for name in names if name]
        matches = [_NUMBERED.fullmatch(name) for name in names]
        numbers = [int(m.group(1)) for m in matches if m]
        if names and None not in matches and numbers[0] in (0, 1):
            start = numbers[0]
            for line, (number, expected) in enumerate(zip(numbers, range(start, start + len(numbers))), 1):
                if number != expected:  # the labels after it would all be off by the gap
                    raise UsageError(
                        f"{path}:{line}: class number {number}, expected {expected}: a numbered class "
                        f"list counts {start}, {start + 1}, {start + 2}, ... without gaps"
                    )
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


def label_index(classes: list[str]) -> dict[str, int]:
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


def existing_videos(
    source: Path,
    listed: list[tuple[Path, int]] | list[tuple[Path, tuple[Action, ...]]],
    found: Mapping[str, str] | None = None,
) -> Annotations:
    """The ``(video file, label or actions)`` pairs ``source`` lists whose file exists or, with
    ``found`` (an :func:`index_videos` map), whose name less a video suffix it holds; the others
    are left out and reported once."""
    videos, missing = [], []
    for video, label in listed:
        if found is None:
            path = str(video) if video.is_file() else None
        else:
            path = found.get(video.stem if video.suffix.lower() in VIDEO_EXTENSIONS else video.name)
        if path is None:
            missing.append(str(video))
        else:
            videos.append(
                VideoRecord(path, label) if isinstance(label, int) else VideoRecord(path, actions=label)
            )
    report_missing(source, missing, len(listed))
    return Annotations(videos, missing)


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
