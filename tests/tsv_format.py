"""A dataset format defined outside the package, as a user adds one: this file, plus one
``register_format(FORMAT)`` call (``test_data_format_registry.py``).

``*.tsv`` files of ``<class name><TAB><video path>`` lines, paths relative to the video root;
the classes are the names the file uses, sorted.
"""

from __future__ import annotations

from pathlib import Path

from videoswinv2.data import AnnotationFormat, Annotations, VideoRecord
from videoswinv2.errors import UsageError


def _rows(source: Path) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise UsageError(f"{source}:{number}: expected '<class>\\t<video>' (annotation_format tsv)")
        rows.append((parts[0], parts[1]))
    return rows


def read_tsv(source: Path, root: Path, classes: list[str], subset: str, split: int) -> Annotations:
    labels = {name: i for i, name in enumerate(classes)}
    return Annotations([VideoRecord(str(root / video), labels[name]) for name, video in _rows(source)])


FORMAT = AnnotationFormat(
    "tsv",
    read=read_tsv,
    classes=lambda source, split: sorted({name for name, _ in _rows(source)}),
    detect=lambda source: source.suffix == ".tsv",
)
