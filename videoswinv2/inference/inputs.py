"""What a user may name as input: video files, folders of videos, and text files listing videos."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePath

from videoswinv2.data.annotations import VIDEO_EXTENSIONS, find_videos
from videoswinv2.errors import UsageError

# Searched for in folders; a file named directly is taken as a video whatever its suffix says,
# unless it is a text file (a list).
VIDEO_SUFFIXES = frozenset(VIDEO_EXTENSIONS) | {".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp"}


def _is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _read_list(path: Path) -> list[str]:
    """Paths listed one per line (blank lines and ``#`` comments skipped), relative to the
    current directory as ``find`` and ``ls`` write them."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"{path} is neither a video ({'/'.join(sorted(VIDEO_SUFFIXES))}) nor a text file listing videos"
        ) from None
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def collect_videos(inputs: Sequence[str]) -> list[str]:
    """Video paths from files, folders (searched recursively, sorted) and text files listing one
    video per line, in the order given, each file once however spelt. A listed video that does not
    exist is kept (it fails like any unreadable video); a named input that is none of these is a
    ``UsageError``."""
    videos: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            videos += [str(path / video) for video in find_videos(path, VIDEO_SUFFIXES)]
        elif _is_video_name(path):
            videos.append(item)
        elif path.is_file():
            videos += _read_list(path)
        else:
            raise UsageError(
                f"{item} does not exist (expected a video, a folder or a text file listing videos)"
            )
    unique: dict[str, str] = {}
    for video in videos:
        unique.setdefault(os.path.realpath(video), video)
    return list(unique.values())


def mirrored_path(video: str, suffix: str) -> PurePath:
    """Where ``video``'s output goes under an output folder: its path (normalised; absolute less its
    root if absolute or climbing out with ``..``) plus ``suffix``, ``a.mp4`` -> ``a.mp4.npy``."""
    path = PurePath(os.path.normpath(video))
    if path.is_absolute() or path.parts[:1] == ("..",):
        path = Path(video).resolve()
        path = path.relative_to(path.anchor)
    return path.with_name(path.name + suffix)
