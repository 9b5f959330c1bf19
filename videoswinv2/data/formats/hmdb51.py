"""``hmdb51``: ``testTrainMulti_7030_splits/``, files ``<class>_test_split<N>.txt`` of lines
``<video>.avi <flag>`` (1 train, 2 test, 0 unused); videos ``<class>/<video>.avi``; classes in
alphabetical order, as mmaction2."""

from __future__ import annotations

import re
from pathlib import Path

from videoswinv2.data.annotations import AnnotationFormat, Annotations, Subset, existing_videos
from videoswinv2.errors import UsageError

HMDB_SPLIT = re.compile(r"(.+)_test_split(\d+)\.txt")
_HMDB_FLAGS = {"train": "1", "val": "2", "test": "2"}


def _hmdb_split_files(source: Path, split: int) -> dict[str, Path]:
    """Class name -> its split file, for split ``split`` of the folder ``source``."""
    if not source.is_dir():
        raise UsageError(
            f"{source}: HMDB51's split files are read from their folder (testTrainMulti_7030_splits), "
            "not one by one (annotation_format hmdb51)"
        )
    files, other_splits = {}, set()
    for path in sorted(source.iterdir()):
        match = HMDB_SPLIT.fullmatch(path.name)
        if match and int(match.group(2)) == split:
            files[match.group(1)] = path
        elif match:
            other_splits.add(match.group(1))
    if not files:
        raise UsageError(f"{source}: no '<class>_test_split{split}.txt' files (annotation_format hmdb51)")
    missing = sorted(other_splits - set(files))
    if missing:  # the class would silently drop out of the class list
        raise UsageError(
            f"{source}: {', '.join(f'{name}_test_split{split}.txt' for name in missing)} missing, while "
            f"other splits' files of {'that class' if len(missing) == 1 else 'those classes'} are there"
        )
    return files


def read_hmdb51(
    source: str | Path, root: str | Path, classes: list[str], subset: Subset = "train", split: int = 1
) -> Annotations:
    """HMDB51's split folder: flag 1 videos train, flag 2 videos validate and test, flag 0 videos
    are not used; videos are ``root/<class>/<video>.avi``."""
    source, root = Path(source), Path(root)
    labels = {name: i for i, name in enumerate(classes)}
    wanted = _HMDB_FLAGS[subset]
    listed: list[tuple[Path, int]] = []
    for name, path in _hmdb_split_files(source, split).items():
        if name not in labels:
            raise UsageError(f"{path}: class {name!r} is not among the {len(classes)} classes")
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise UsageError(
                    f"{path}:{number}: expected '<video>.avi <0|1|2>' (annotation_format hmdb51), got {line.strip()!r}"
                )
            if parts[1] != wanted:
                continue
            listed.append((root / name / parts[0], labels[name]))
    return existing_videos(source, listed)


def _is_hmdb51(source: Path) -> bool:
    """The split folder; one split file alone is refused (its flags would pass for labels)."""
    if source.is_dir():
        return any(HMDB_SPLIT.fullmatch(path.name) for path in source.iterdir())
    if HMDB_SPLIT.fullmatch(source.name):
        raise UsageError(
            f"{source}:1: one HMDB51 split file ('video.avi flag' lines); give the folder that holds "
            "them all (testTrainMulti_7030_splits) with annotation_format hmdb51"
        )
    return False


FORMAT = AnnotationFormat(
    "hmdb51",
    read=read_hmdb51,
    classes=lambda source, split: sorted(_hmdb_split_files(source, split)),
    detect=_is_hmdb51,
    folder=True,
)
