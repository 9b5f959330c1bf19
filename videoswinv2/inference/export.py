"""A trained model for deployment: ONNX or a ``torch.export`` program (``.pt2``), checked against
PyTorch before it is kept.

The exported function is the backbone's ``forward``: clips ``(B, 3, T, H, W)`` float32,
normalised as in training, to logits ``(B, num_classes)``, or for a multi-label model to its
probabilities (the sigmoid of each logit: what it is read by); T, H and W are the model's
evaluation clip's, B is dynamic. The file carries the model's record and the input's preprocessing.
ONNX goes through ``torch.onnx.export(..., dynamo=True)``, which traces the custom
``autograd.Function`` of the explicit kernel (the TorchScript exporter cannot); attention runs as
``"sdpa"`` while exporting, whatever the checkpoint's ``attn_impl``: one kernel for every model.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from videoswinv2.errors import WorkFailed
from videoswinv2.inference.loading import LoadedModel
from videoswinv2.record import PT2_EXTRA_FILE, preprocessing_strings

FORMATS = ("onnx", "pt2")
MAX_ABS_DIFF = 1e-4  # fp32 outputs, exported vs eager
INPUT_NAME = "clips"
OUTPUT_NAMES = {False: "logits", True: "probabilities"}  # by multi_label


class ExportError(WorkFailed):
    """The exported model does not compute what the PyTorch model does (or cannot be run)."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    input_shape: tuple[int, ...]
    output: str  # what it gives: logits, or probabilities
    max_abs_diff: float
    batch_sizes: tuple[int, ...]
    seconds: float


class _Probabilities(torch.nn.Module):
    """A multi-label backbone ending in its sigmoids: clips -> probabilities ``(B, K)``."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x).sigmoid()


def metadata_strings(loaded: LoadedModel) -> dict[str, str]:
    """The record of ``loaded`` as it runs (its classes and views), and its input's preprocessing."""
    hparams = loaded.module.hparams
    views = asdict(loaded.views)
    metadata = replace(
        loaded.record,
        model=hparams.model,
        num_classes=hparams.num_classes,
        model_kwargs=dict(hparams.model_kwargs or {}),
        classes=tuple(loaded.classes),
        views=views,
    )
    return {**metadata.to_strings(), **preprocessing_strings(views, metadata.multi_label)}


def _optional(module: str, purpose: str) -> Any:
    """The optional ``module`` (of the ``export`` extra), or an :class:`ExportError` saying so."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"{purpose}: pip install 'videoswinv2[export]'") from None


def _onnx_session(path: Path):
    onnxruntime = _optional("onnxruntime", "checking an ONNX file needs onnxruntime")
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _write(
    model: torch.nn.Module, example: torch.Tensor, fmt: str, path: Path, strings: dict[str, str]
) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic_shapes = {"x": {0: batch}}
    if fmt == "pt2":
        program = torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)
        torch.export.save(program, str(path), extra_files={PT2_EXTRA_FILE: json.dumps(strings)})
        return
    onnx = _optional("onnx", "ONNX export needs onnx and onnxscript")
    for name in ("onnxscript", "onnx_ir"):  # their optimisers log a line per node at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAMES[isinstance(model, _Probabilities)]],
        dynamic_shapes=dynamic_shapes,
        verbose=False,
    )
    proto = onnx.load(str(path))
    for key, value in strings.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def run_exported(path: Path, fmt: str, clips: torch.Tensor) -> torch.Tensor:
    """The outputs of an exported file for ``clips`` (onnxruntime on the CPU, or the loaded program)."""
    if fmt == "onnx":
        session = _onnx_session(path)
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: clips.numpy()})[0])
    with torch.no_grad():
        return torch.export.load(str(path)).module()(clips)


def export_model(loaded: LoadedModel, fmt: str, output: str | os.PathLike, seed: int = 0) -> ExportResult:
    """Export ``loaded`` to ``output``, which appears only if on random clips of two batch sizes it
    is within :data:`MAX_ABS_DIFF` of the eager fp32 model (else :class:`ExportError`)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    started = time.perf_counter()
    path = Path(output)
    backbone = loaded.module.backbone.float().eval()
    backbone.cache_attention_bias(False)
    backbone.set_attn_impl("sdpa")
    multi_label = loaded.record.multi_label
    model = _Probabilities(backbone) if multi_label else backbone
    output = OUTPUT_NAMES[multi_label]
    views = loaded.views
    shape = (3, views.num_frames, views.crop_size, views.crop_size)
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(2, *shape, generator=generator)
    temporary = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        with torch.no_grad():
            _write(model, example, fmt, temporary, metadata_strings(loaded))
        diffs = []
        for batch in (1, 3):  # not the traced batch: the dynamic dimension must hold
            clips = torch.randn(batch, *shape, generator=generator)
            with torch.no_grad():
                expected = model(clips)
            diffs.append(float((run_exported(temporary, fmt, clips) - expected).abs().max()))
        if max(diffs) > MAX_ABS_DIFF:
            raise ExportError(
                f"the exported model's {output} differ from PyTorch's by up to {max(diffs):.2e} "
                f"(> {MAX_ABS_DIFF:g} allowed): {path} was not written"
            )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    return ExportResult(path, fmt, (-1, *shape), output, max(diffs), (1, 3), seconds)
