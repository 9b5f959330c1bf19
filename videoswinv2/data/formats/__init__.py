"""The annotation layouts of the datasets people train and fine-tune on, as their archives unpack:
one module per format, one registry, and the entry points that read any of them.

``annotation_format`` names the layout of a split's annotation source:

- ``kinetics_csv``: the official Kinetics-400/600/700 CSV (``label,youtube_id,...``);
- ``list``: ``path label_index`` lines (mmaction2 / pytorchvideo);
- ``class_folders``: a folder of class folders (``train/<class>/<video>``);
- ``ucf101``: ``ucfTrainTestlist/`` (or one of its lists);
- ``hmdb51``: ``testTrainMulti_7030_splits/``;
- ``ssv2``: Something-Something V2's ``train.json`` / ``validation.json``;
- ``auto``: the one layout a source can be (a ``.json`` file is SSv2's, a folder holding
  ``classInd.txt`` UCF101's, ...), see :func:`detect_format`.

A source that does not match its format is a ``UsageError`` (a ``ValueError``) naming the file,
the line (or JSON entry) and the format expected. Lists without labels (UCF101's test lists used
for training, SSv2's ``test.json``, a Kinetics test CSV without labels) are refused the same way.

Adding a format is one module that defines an :class:`AnnotationFormat` and one entry: in
:data:`FORMATS` below for a format of the package, or, from your own code, a call of
:func:`register_format` before the data module is built (for the command line: in the script
that then calls ``videoswinv2.cli.main()``).
"""

from __future__ import annotations

from pathlib import Path

from videoswinv2.data.annotations import AnnotationFormat, Annotations, Subset
from videoswinv2.data.formats import class_folders, hmdb51, kinetics_csv, list_file, ssv2, ucf101
from videoswinv2.errors import UsageError

# By name; `auto` asks the formats with a `detect` in this order (registered ones last), and reads
# a source none of them claims as class folders (a folder) or a list (a file).
FORMATS: dict[str, AnnotationFormat] = {
    f.name: f
    for f in (
        ucf101.FORMAT,
        hmdb51.FORMAT,
        ssv2.FORMAT,
        kinetics_csv.FORMAT,
        class_folders.FORMAT,
        list_file.FORMAT,
    )
}


def register_format(annotation_format: AnnotationFormat) -> AnnotationFormat:
    """Make ``annotation_format`` readable by its name (and by ``auto`` if it has a ``detect``)."""
    if annotation_format.name == "auto":
        raise ValueError("'auto' picks a format; it cannot name one")
    FORMATS[annotation_format.name] = annotation_format
    return annotation_format


def format_names() -> tuple[str, ...]:
    """What ``annotation_format`` may be: ``auto`` and the registered formats."""
    return ("auto", *FORMATS)


def check_format(name: str) -> str:
    """``name``, if it is one of :func:`format_names`; a ``UsageError`` listing them otherwise."""
    if name not in format_names():
        raise UsageError(f"annotation_format must be one of {format_names()}, got {name!r}")
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
    """The videos of one split: ``source`` read as ``annotation_format``, videos under ``root``.

    ``subset`` says what the split is for (UCF101's and HMDB51's split files hold train and test
    together; a test list is refused for training) and ``split`` which official split (1-3) a
    UCF101 / HMDB51 folder gives.
    """
    source = Path(source)
    layout = _resolve(source, annotation_format)
    if source.is_dir() and not layout.folder:
        raise UsageError(f"{source}: a folder, where annotation_format {layout.name} reads a file")
    return layout.read(source, Path(root), classes, subset, split)


def dataset_classes(source: str | Path, annotation_format: str = "auto", split: int = 1) -> list[str]:
    """The class list a dataset defines, for when no class names file is given: UCF101's
    ``classInd.txt``, HMDB51's split-file names (sorted), SSv2's ``labels.json``, a class-folder
    root's folder names (sorted), a Kinetics CSV's labels (Kinetics-400's 400 names if they all are
    Kinetics-400 classes, else the CSV's labels sorted, as the official K600/K700 lists are). A
    ``path label_index`` list names no classes: Kinetics-400's are assumed, with a warning."""
    source = Path(source)
    return _resolve(source, annotation_format).classes(source, split)


__all__ = [
    "FORMATS",
    "AnnotationFormat",
    "check_format",
    "dataset_classes",
    "detect_format",
    "format_names",
    "read_annotations",
    "register_format",
]
