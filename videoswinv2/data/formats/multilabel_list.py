"""``multilabel_list``: mmaction2's multi-label list, ``path label_index label_index ...`` per line.
Fields are separated by whitespace, as mmaction2 splits them, so the path is the first field and
cannot contain spaces; a path alone is a video with no label. Read only when named (``auto``
takes such a file for a ``list``), and it names no classes: give ``class_names_file``."""

from __future__ import annotations

from pathlib import Path

from videoswinv2.data.annotations import Action, AnnotationFormat, Annotations, existing_videos
from videoswinv2.errors import UsageError

_LAYOUT = "annotation_format multilabel_list: 'path label_index label_index ...'"


def read_multilabel_list(path: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """Each line's ``root/<path>`` with one whole-video :class:`Action` per label index."""
    path, root = Path(path), Path(root)
    listed = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        video, *tokens = line.split() or [""]
        if not video:
            continue
        labels = []
        for token in tokens:
            try:
                labels.append(int(token))
            except ValueError:
                raise UsageError(
                    f"{path}:{number}: label {token!r} is not an integer ({_LAYOUT}, whitespace-separated: "
                    "a path cannot contain spaces)"
                ) from None
            if not 0 <= labels[-1] < len(classes):
                raise UsageError(f"{path}:{number}: label {labels[-1]} is outside the {len(classes)} classes")
        listed.append((root / video, tuple(Action(label) for label in dict.fromkeys(labels))))
    return existing_videos(path, listed)


def _no_classes(source: Path, split: int) -> list[str]:
    raise UsageError(
        f"{source} names no classes (annotation_format multilabel_list): give class_names_file, "
        "the class names one per line in label order"
    )


# No `detect`: a line `a.mp4 3` is a `list` line too.
FORMAT = AnnotationFormat(
    "multilabel_list",
    read=lambda source, root, classes, subset, split: read_multilabel_list(source, root, classes),
    classes=_no_classes,
    multi_label=True,
)
