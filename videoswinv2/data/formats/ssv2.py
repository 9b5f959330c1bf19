"""``ssv2``: Something-Something V2's ``train.json`` / ``validation.json`` (``{id, label, template,
placeholders}``; the class is the template without brackets, a key of ``labels.json`` beside
them); videos ``<id>.webm``, found by their stem whatever the container."""

from __future__ import annotations

import json
from pathlib import Path

from videoswinv2.data.annotations import (
    AnnotationFormat,
    Annotations,
    existing_videos,
    index_videos,
    read_class_names,
)
from videoswinv2.errors import UsageError

_SSV2_CLASSES = "labels.json"


def read_ssv2(source: str | Path, root: str | Path, classes: list[str]) -> Annotations:
    """SSv2's ``train.json`` / ``validation.json``; videos ``root/<id>.<any video suffix>``."""
    source, root = Path(source), Path(root)
    try:
        rows = json.loads(source.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{source}:{error.lineno}: not JSON ({error.msg}) (annotation_format ssv2)"
        ) from None
    if not isinstance(rows, list):
        raise UsageError(
            f"{source}: expected a JSON list of {{id, label, template, placeholders}} (annotation_format ssv2)"
        )
    labels = {name: i for i, name in enumerate(classes)}
    listed: list[tuple[Path, int]] = []
    labelled = any(isinstance(row, dict) and "template" in row for row in rows)
    for number, row in enumerate(rows, start=1):
        where = f"{source}: entry {number}"
        if not isinstance(row, dict) or "id" not in row:
            raise UsageError(
                f"{where}: expected {{id, label, template, placeholders}} (annotation_format ssv2), got {row!r}"
            )
        if "template" not in row and labelled:
            raise UsageError(f"{where} (id {row['id']}): no template, so no class (annotation_format ssv2)")
        if "template" not in row:
            raise UsageError(
                f"{where} (id {row['id']}): no label: an unlabelled list (SSv2's test.json has no public "
                "labels) cannot train or test; use validation.json"
            )
        label = str(row["template"]).replace("[", "").replace("]", "")  # "Pushing [something] ..."
        if label not in labels:
            raise UsageError(
                f"{where} (id {row['id']}): class {label!r} is not in {_SSV2_CLASSES}'s {len(classes)}"
            )
        listed.append((root / f"{row['id']}.webm", labels[label]))  # found by its stem, whatever the suffix
    return existing_videos(source, listed, index_videos([root]))


FORMAT = AnnotationFormat(
    "ssv2",
    read=lambda source, root, classes, subset, split: read_ssv2(source, root, classes),
    classes=lambda source, split: read_class_names(source.parent / _SSV2_CLASSES),
    detect=lambda source: source.is_file() and source.suffix.lower() == ".json",
)
