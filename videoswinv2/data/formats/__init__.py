"""Dataset annotation formats: one module each (see each for its layout as the archive unpacks),
one registry, and the entry points that read any of them; ``annotation_format: auto`` takes the
one format a source can be. A source that does not match its format, or lists no labels, is a
``UsageError`` naming the file, the line (or JSON entry) and the format expected.

Adding a format is one module defining an :class:`AnnotationFormat` plus one entry: in
:data:`FORMATS` for the package's own, else a :func:`register_format` call before the data module
is built (for the command line: in the script that then calls ``videoswinv2.cli.main()``).
"""

from __future__ import annotations

from pathlib import Path

from videoswinv2.data.annotations import AnnotationFormat, Annotations, Subset
from videoswinv2.data.formats import (
    charades,
    class_folders,
    hmdb51,
    kinetics_csv,
    list_file,
    multilabel_csv,
    multilabel_list,
    ssv2,
    ucf101,
)
from videoswinv2.errors import UsageError

# By name; `auto` asks the formats with a `detect` in this order (registered ones last), and reads
# a source none of them claims as class folders (a folder) or a list (a file).
_BUILT_IN = (
    ucf101,
    hmdb51,
    ssv2,
    charades,
    multilabel_csv,
    kinetics_csv,
    class_folders,
    list_file,
    multilabel_list,
)
FORMATS: dict[str, AnnotationFormat] = {module.FORMAT.name: module.FORMAT for module in _BUILT_IN}


def register_format(annotation_format: AnnotationFormat) -> AnnotationFormat:
    """Make ``annotation_format`` readable by its name (and by ``auto`` if it has a ``detect``)."""
    if annotation_format.name == "auto":
        raise ValueError("'auto' picks a format; it cannot name one")
    FORMATS[annotation_format.name] = annotation_format
    return annotation_format


def check_format(name: str) -> str:
    """``name``, if it is ``auto`` or a registered format; a ``UsageError`` listing them otherwise."""
    if name != "auto" and name not in FORMATS:
        raise UsageError(f"annotation_format must be one of {('auto', *FORMATS)}, got {name!r}")
    return name


def detect_format(source: str | Path) -> str:
    """The layout of ``source``, where only one fits; ``list`` for any other text file."""
    source = Path(source)
    if not (source.is_dir() or source.is_file()):
        raise UsageError(f"annotation file {source} does not exist")
    for annotation_format in FORMATS.values():
        if annotation_format.detect is not None and annotation_format.detect(source):
            return annotation_format.name
    return class_folders.FORMAT.name if source.is_dir() else list_file.FORMAT.name


def _resolve(source: Path, name: str) -> AnnotationFormat:
    if check_format(name) == "auto":
        return FORMATS[detect_format(source)]
    if not source.exists():
        raise UsageError(f"annotation file {source} does not exist")
    return FORMATS[name]


def read_annotations(
    source: str | Path,
    root: str | Path,
    classes: list[str],
    annotation_format: str = "auto",
    subset: Subset = "train",
    split: int = 1,
) -> Annotations:
    """The videos of one split: ``source`` read as ``annotation_format``, videos under ``root``;
    ``subset`` says what the split is for and ``split`` which official split (1-3) a UCF101 or
    HMDB51 folder gives."""
    source = Path(source)
    layout = _resolve(source, annotation_format)
    if source.is_dir() and not layout.folder:
        raise UsageError(f"{source}: a folder, where annotation_format {layout.name} reads a file")
    return layout.read(source, Path(root), classes, subset, split)


def is_multi_label(source: str | Path, annotation_format: str = "auto") -> bool:
    """Whether ``source``, read as ``annotation_format``, gives each video several labels."""
    return _resolve(Path(source), annotation_format).multi_label


def dataset_classes(source: str | Path, annotation_format: str = "auto", split: int = 1) -> list[str]:
    """The class list a dataset defines, for when no class names file is given (each format's
    ``classes``; a ``path label_index`` list names none: Kinetics-400's, with a warning)."""
    source = Path(source)
    return _resolve(source, annotation_format).classes(source, split)
