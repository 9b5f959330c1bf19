"""Frame-exact video decoding with PyAV, decord or torchcodec.

``open_video(path, decoder)`` returns a reader whose ``read(indices)`` gives the frames at those
display-order indices as a ``(T, H, W, C)`` uint8 RGB tensor, resized to ``short_side`` where one
is given (torchcodec resizes in its colour conversion, the others after it), on the CPU or, with
torchcodec, on a CUDA device. Only the video stream is decoded,
and only from the keyframe before each needed stretch of frames. Every failure (missing file,
no video stream, truncated data, a decoder error, a frame the decoder never produces) is raised
as :class:`VideoDecodeError` naming the file and the cause, with its ``kind`` (one of
:data:`BROKEN_KINDS`). Frames come out the way players show them: a display rotation stored
with the video (phone footage) is applied.
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import av
import numpy as np
import torch
from einops import rearrange

from videoswinv2.data.transforms import resize_short_side, resized_size
from videoswinv2.errors import UsageError

log = logging.getLogger(__name__)

DecoderName = Literal["pyav", "decord", "torchcodec"]
DECODERS: tuple[str, ...] = ("pyav", "decord", "torchcodec")

# PyAV >= 17 converts pixel formats on a thread pool unless told otherwise; in a DataLoader worker
# (one per core) that doubles the CPU time per frame and stalls when the cores are busy.
_PYAV_THREADED_CONVERSION = int(av.__version__.split(".")[0]) >= 17

# decord and torchcodec seek exactly only in containers with a sample index; in others (MPEG-TS,
# ...) decord returns neighbouring frames (measured: 11-17 frames off in a 90-frame H.264 .ts) and
# torchcodec runs out of frames, so those go to PyAV.
_INDEXED_CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")

# Frames per call when decord or torchcodec reads a video from start to end: consecutive batches
# decode forward from where the previous one ended.
_SEQUENTIAL_BATCH = 16

# torchcodec resizes in its colour conversion on the GPU; on the CPU its resize (FFmpeg's scaler)
# measured 1.5-2.5x the CPU time of converting the whole frame and resizing it with torchvision
# (docs/benchmarks/data.md), so there frames are resized after the conversion, as PyAV's are.
RESIZE_WHILE_DECODING_ON_CPU = False

# AVI headers are known to count one frame more than the file stores; anything beyond this is
# data that is missing from the file (a truncated download).
_HEADER_FRAME_SLACK = 1


# Why a video could not be used, as reported by VideoDecodeError.kind and `videoswinv2 prepare`.
BROKEN_KINDS: tuple[str, ...] = (
    "missing",
    "unreadable",
    "no_video_stream",
    "truncated",
    "no_frames",
    "decode_error",
)


class VideoDecodeError(RuntimeError):
    """A video could not be opened or decoded; the message names the file and the cause, and
    ``kind`` (one of :data:`BROKEN_KINDS`) says which way it is broken."""

    def __init__(self, message: str, kind: str = "decode_error") -> None:
        if kind not in BROKEN_KINDS:
            raise ValueError(f"unknown broken-video kind {kind!r}; choose one of {BROKEN_KINDS}")
        super().__init__(message)
        self.kind = kind


def quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0-3) that show a frame upright: ``rotation`` is the
    stream's display rotation in degrees counter-clockwise (PyAV's ``frame.rotation``), rounded."""
    return round(rotation / 90) % 4


def upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """``(H, W, C)`` frame turned the way players show it (see :func:`quarter_turns`)."""
    turns = quarter_turns(rotation)
    return np.rot90(image, turns) if turns else image


class VideoReader(ABC):
    """An open video: ``num_frames`` and ``fps`` for clip planning, ``read`` for the frames, whose
    short side is ``short_side`` when one is set (None: as decoded)."""

    path: str
    num_frames: int
    fps: float
    short_side: int | None = None
    resizes_while_decoding = False  # True: the decoder itself gives frames at short_side

    @abstractmethod
    def _read_sorted(self, indices: list[int]) -> torch.Tensor:
        """Frames at strictly increasing ``indices`` -> ``(len(indices), H, W, 3)`` uint8."""

    @abstractmethod
    def close(self) -> None:
        """Release the file and the decoder."""

    @abstractmethod
    def _frames_from(self, start: int) -> Iterator[tuple[int, torch.Tensor]]:
        """What :meth:`iter_frames` yields, before :meth:`_sized`."""

    def _sized(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, H, W, 3)`` frames with their short side at ``short_side``, where the decoder did
        not resize them already (the same antialiased resize the transforms apply)."""
        if self.short_side is None or self.resizes_while_decoding:
            return frames
        return rearrange(
            resize_short_side(frames, self.short_side).as_subclass(torch.Tensor), "t c h w -> t h w c"
        )

    def iter_frames(self, start: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
        """Every frame from ``start`` to the end, in display order, each decoded once (one seek at
        most, to reach ``start``): ``(index, (H, W, 3) uint8)``. A frame the decoder skips is
        missing from the sequence."""
        for index, frame in self._frames_from(start):
            yield index, self._sized(frame[None])[0]

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) -> ``(T, H, W, 3)`` uint8 RGB."""
        if len(indices) == 0:
            raise ValueError("read() needs at least one frame index")
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(f"{self.path}: frame indices {bad[:5]} outside [0, {self.num_frames})")
        unique = sorted(set(indices))
        frames = self._sized(self._read_sorted(unique))
        if len(unique) == len(indices) and unique == list(indices):
            return frames
        position = {index: k for k, index in enumerate(unique)}
        return frames[torch.tensor([position[i] for i in indices], device=frames.device)]

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PyAVReader(VideoReader):
    """PyAV reader with an exact frame index built from the demuxed packets.

    Frame ``i`` is the packet with the ``i``-th smallest presentation timestamp among those the
    decoder will output (edit-list pre-roll packets flagged as discard are left out), so indices
    are exact for B-frames and variable frame rates, and match what decoding from the start yields.
    """

    def __init__(self, path: str, threads: int = 1, short_side: int | None = None) -> None:
        self.path, self.short_side = str(path), short_side
        self._threads = threads
        self._convert: dict[str, object] = {"format": "rgb24"}
        if _PYAV_THREADED_CONVERSION:
            self._convert["threads"] = threads
        self._open()
        try:
            self._index_packets()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        try:
            self._container = av.open(self.path)
        except (av.FFmpegError, OSError) as error:
            raise VideoDecodeError(f"{self.path}: cannot open ({error})", "unreadable") from error
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError(f"{self.path}: no video stream", "no_video_stream")
        self._stream = self._container.streams.video[0]
        self._stream.codec_context.thread_count = self._threads

    def _index_packets(self) -> None:
        stream = self._stream
        shown: list[tuple[int, bool]] = []  # (pts, keyframe) of each displayed frame
        stored = 0
        try:
            for packet in self._container.demux(stream):
                if packet.size == 0:  # the end-of-stream marker PyAV yields for flushing
                    continue
                stored += 1
                pts = packet.pts if packet.pts is not None else packet.dts
                if packet.is_discard or pts is None:
                    continue
                shown.append((pts, packet.is_keyframe))
        except av.FFmpegError as error:
            raise VideoDecodeError(f"{self.path}: cannot read packets ({error})", "truncated") from error
        declared = stream.frames
        if declared > 0 and stored < declared - _HEADER_FRAME_SLACK:
            raise VideoDecodeError(
                f"{self.path}: header declares {declared} frames but only {stored} are stored "
                "(truncated file?)",
                "truncated",
            )
        if not shown:
            raise VideoDecodeError(f"{self.path}: the video stream holds no frames", "no_frames")
        shown.sort()
        self._pts = [pts for pts, _ in shown]
        self._frame_of_pts = {pts: i for i, pts in enumerate(self._pts)}
        self._keyframes = [i for i, (_, key) in enumerate(shown) if key] or [0]
        self.num_frames = len(shown)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0

    def _keyframe_before(self, index: int) -> int:
        return self._keyframes[max(bisect.bisect_right(self._keyframes, index) - 1, 0)]

    def _read_sorted(self, indices: list[int]) -> torch.Tensor:
        out: list[np.ndarray | None] = [None] * len(indices)
        k = 0
        try:
            while k < len(indices):
                k = self._decode_run(indices, k, out)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"{self.path}: decoding failed ({error})") from error
        shapes = {frame.shape for frame in out if frame is not None}
        if len(shapes) != 1:
            raise VideoDecodeError(f"{self.path}: frame size changes within the clip {shapes}")
        return torch.from_numpy(np.stack(out))  # type: ignore[arg-type]

    def _decode_run(
        self, indices: list[int], k: int, out: list[np.ndarray | None], from_start: bool = False
    ) -> int:
        """Seek to the keyframe before ``indices[k]`` and decode forward, filling ``out``.

        Returns the position of the first index this run did not fill: the run stops where a
        later keyframe lies before the next wanted frame, since seeking there skips decoding.
        A seek by the keyframe's pts lands on it in indexed containers (a dts lands one keyframe
        early in mp4). Where a seek lands after it or past the end (MPEG-TS seeks by estimate),
        the run starts over from the beginning of a freshly opened file.
        """
        if from_start:
            self.close()
            self._open()
        else:
            start = self._keyframe_before(indices[k])
            self._container.seek(self._pts[start], backward=True, stream=self._stream)
        first = True
        for packet in self._container.demux(self._stream):
            for frame in packet.decode():
                if frame.pts is None:
                    raise VideoDecodeError(f"{self.path}: decoded a frame without a timestamp")
                index = self._frame_of_pts.get(frame.pts)
                if index is None:
                    continue
                if first and index > indices[k]:
                    if from_start:
                        raise VideoDecodeError(f"{self.path}: decoding starts at frame {index}")
                    return self._decode_run(indices, k, out, from_start=True)
                first = False
                if index < indices[k]:
                    continue
                if index > indices[k]:
                    raise VideoDecodeError(f"{self.path}: the decoder never produced frame {indices[k]}")
                out[k] = upright(frame.to_ndarray(**self._convert), frame.rotation)
                k += 1
                if k == len(indices):
                    return k
                if self._keyframe_before(indices[k]) > index:
                    return k
        if first and not from_start:  # the seek went past the last frame
            return self._decode_run(indices, k, out, from_start=True)
        raise VideoDecodeError(
            f"{self.path}: decoding ended before frame {indices[k]} ({self.num_frames} frames indexed)"
        )

    def _frames_from(self, start: int) -> Iterator[tuple[int, torch.Tensor]]:
        try:
            yield from self._frames_after(start, from_start=self._keyframe_before(start) == 0)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"{self.path}: decoding failed ({error})") from error

    def _frames_after(self, start: int, from_start: bool) -> Iterator[tuple[int, torch.Tensor]]:
        # As _decode_run: seek by the keyframe's pts; where the seek lands after it, start over
        # from the beginning of a freshly opened file.
        if from_start:
            self.close()
            self._open()
        else:
            self._container.seek(self._pts[self._keyframe_before(start)], backward=True, stream=self._stream)
        first = True
        for packet in self._container.demux(self._stream):
            for frame in packet.decode():
                index = self._frame_of_pts.get(frame.pts)
                if index is None:
                    continue
                if first and index > start and not from_start:
                    yield from self._frames_after(start, from_start=True)
                    return
                first = False
                if index >= start:
                    image = np.ascontiguousarray(upright(frame.to_ndarray(**self._convert), frame.rotation))
                    yield index, torch.from_numpy(image)

    def close(self) -> None:
        self._container.close()


class DecordReader(VideoReader):
    """decord reader (``VideoReader.get_batch``), guarded against decord's edit-list blind spot.

    decord applies the display rotation itself.

    decord numbers every stored packet as a frame, including the edit-list pre-roll that
    FFmpeg decodes but never shows (what ``ffmpeg -ss T -c copy`` cuts leave). On such files it
    over-counts frames and returns wrong ones (measured: shifted by the pre-roll, repeated near
    the end); over-counted files are also what makes ``get_batch`` loop forever in
    dmlc/decord#373. The pre-roll shows up in decord's own index as negative timestamps, so
    :func:`open_video` checks for it and reads those files with PyAV instead.
    """

    def __init__(self, path: str, threads: int = 1, short_side: int | None = None) -> None:
        import decord  # imported here so that PyAV users never load decord's bundled FFmpeg

        self.path, self.short_side = str(path), short_side
        try:
            self._reader = decord.VideoReader(self.path, num_threads=threads)
            self.num_frames = len(self._reader)
            self.fps = float(self._reader.get_avg_fps())
            starts = self._reader.get_frame_timestamp(list(range(self.num_frames)))[:, 0]
        except (decord.DECORDError, RuntimeError, AssertionError) as error:
            raise VideoDecodeError(
                f"{self.path}: cannot open ({_first_line(error)})", "unreadable"
            ) from error
        self.has_preroll = bool((starts < 0).any())

    def _read_sorted(self, indices: list[int]) -> torch.Tensor:
        import decord

        try:
            batch = self._reader.get_batch(indices)
        except (decord.DECORDError, RuntimeError) as error:
            raise VideoDecodeError(f"{self.path}: decoding failed ({_first_line(error)})") from error
        return torch.utils.dlpack.from_dlpack(batch.to_dlpack())

    def _frames_from(self, start: int) -> Iterator[tuple[int, torch.Tensor]]:
        yield from _in_batches(self, start)

    def close(self) -> None:
        del self._reader


def _in_batches(reader: VideoReader, start: int) -> Iterator[tuple[int, torch.Tensor]]:
    """Every frame from ``start``, read ``_SEQUENTIAL_BATCH`` consecutive frames at a time."""
    for first in range(start, reader.num_frames, _SEQUENTIAL_BATCH):
        indices = list(range(first, min(first + _SEQUENTIAL_BATCH, reader.num_frames)))
        yield from zip(indices, reader._read_sorted(indices))


@functools.cache
def _short_side_transform() -> type:
    """torchcodec's decoder transform that resizes the short side (its own ``Resize`` needs the
    output size, which depends on the frames' upright size, known only once the file is open)."""
    from torchcodec.transforms import DecoderTransform  # loads FFmpeg: only where torchcodec is used

    class ShortSide(DecoderTransform):
        def __init__(self, short_side: int) -> None:
            self.short_side, self.size = short_side, None

        def _make_transform_spec(self, input_dims: tuple[int | None, int | None]) -> str:
            self.size = resized_size(*input_dims, self.short_side)  # type: ignore[arg-type]
            return f"resize, {self.size[0]}, {self.size[1]}"

        def _get_output_dims(self) -> tuple[int, int] | None:
            return self.size

    return ShortSide


_logged: set[str] = set()


def _log_once(message: str, *args: object) -> None:
    if message % args not in _logged:
        _logged.add(message % args)
        log.warning(message, *args)


class TorchCodecReader(VideoReader):
    """torchcodec reader (``get_frames_at``, exact seek mode: frames indexed from a scan of every
    packet, in display order, as PyAV's reader indexes them).

    torchcodec applies the display rotation itself, and numbers frames right after edit-list
    pre-roll. With ``device="cuda"`` it decodes on the GPU (NVDEC), resizes to ``short_side`` in
    its colour conversion there (bilinear, antialiased: no full-size RGB frame is made), and the
    frames come out on the GPU; a codec NVDEC cannot decode is decoded on the CPU, said once per
    codec in the log. On the CPU it resizes in its colour conversion only with
    :data:`RESIZE_WHILE_DECODING_ON_CPU` (measured slower than resizing after it).
    """

    def __init__(
        self, path: str, threads: int = 1, short_side: int | None = None, device: str = "cpu"
    ) -> None:
        from torchcodec.decoders import VideoDecoder  # loads FFmpeg: only where torchcodec is used

        self.path, self.short_side = str(path), short_side
        self.resizes_while_decoding = bool(short_side) and (device != "cpu" or RESIZE_WHILE_DECODING_ON_CPU)
        try:
            self._decoder = VideoDecoder(
                self.path,
                seek_mode="exact",
                num_ffmpeg_threads=threads,
                dimension_order="NHWC",
                device=device,
                transforms=[_short_side_transform()(short_side)] if self.resizes_while_decoding else None,
            )
        except ValueError as error:  # torchcodec finds no video stream to decode
            kind = "no_video_stream" if "video stream" in str(error) else "unreadable"
            raise VideoDecodeError(f"{self.path}: {_first_line(error)}", kind) from error
        except RuntimeError as error:
            raise VideoDecodeError(
                f"{self.path}: cannot open ({_first_line(error)})", "unreadable"
            ) from error
        meta = self._decoder.metadata
        if device != "cpu" and self._decoder.cpu_fallback:
            _log_once(
                "torchcodec: no GPU decoder for %s (%s); decoding it on the CPU",
                meta.codec,
                self._decoder.cpu_fallback,
            )
        self.num_frames, self.fps = meta.num_frames or 0, float(meta.average_fps or 0.0)
        # What the header says is shown: its frame count counts edit-list pre-roll too, its
        # duration does not.
        declared = [meta.num_frames_from_header, round((meta.duration_seconds_from_header or 0) * self.fps)]
        declared = min((n for n in declared if n), default=0)
        if declared > 0 and self.num_frames < declared - _HEADER_FRAME_SLACK:
            raise VideoDecodeError(
                f"{self.path}: header declares {declared} frames but only {self.num_frames} are stored "
                "(truncated file?)",
                "truncated",
            )
        if not self.num_frames:
            raise VideoDecodeError(f"{self.path}: the video stream holds no frames", "no_frames")

    def _read_sorted(self, indices: list[int]) -> torch.Tensor:
        try:
            return self._decoder.get_frames_at(indices).data
        except RuntimeError as error:
            raise VideoDecodeError(f"{self.path}: decoding failed ({_first_line(error)})") from error

    def _frames_from(self, start: int) -> Iterator[tuple[int, torch.Tensor]]:
        yield from _in_batches(self, start)

    def close(self) -> None:
        del self._decoder


def _first_line(error: BaseException) -> str:
    """decord's messages carry a C++ stack trace and a "[time] file.cc:line: " prefix,
    torchcodec's a "Function, file.cpp:line, " one."""
    lines = str(error).strip().splitlines()
    return re.sub(r"^(\[[\d:]+\] \S+:\d+: |\w+, \S+:\d+, )+", "", lines[0]) if lines else type(error).__name__


def check_decoder(decoder: str) -> str:
    """``decoder``, once it is a known one that can decode here (a ``UsageError`` otherwise:
    torchcodec loads FFmpeg's shared libraries from the system)."""
    if decoder not in DECODERS:
        raise UsageError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if decoder == "torchcodec":
        import torchcodec  # loads FFmpeg: only where torchcodec is used

        if torchcodec.ffmpeg_major_version is None:
            raise UsageError(
                "decoder torchcodec needs FFmpeg's shared libraries (versions 4 to 9, e.g. Debian's "
                "`apt-get install ffmpeg`) and found none; install them or use decoder pyav"
            )
    return decoder


def open_video(
    path: str,
    decoder: DecoderName = "pyav",
    threads: int = 1,
    short_side: int | None = None,
    device: str = "cpu",
) -> VideoReader:
    """Open ``path`` for frame-exact reading with ``decoder`` ("pyav", "decord" or "torchcodec").

    ``threads`` is the decoder's thread count: 1 suits DataLoader workers, which already run
    one video per core. ``short_side``: frames come out with their short side resized to it
    (antialiased). ``device``: "cuda" decodes on the GPU (torchcodec only; the CPU where there
    is none, said once in the log). decord and torchcodec are used only where they number
    frames right: files in indexed containers (mp4, mov, mkv, webm, avi), and for decord without
    edit-list pre-roll; others go to PyAV. Raises :class:`VideoDecodeError` for any file that
    cannot be read.
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")
    if decoder == "torchcodec":
        check_decoder(decoder)
    if device != "cpu" and decoder != "torchcodec":
        raise ValueError(f"decoding on {device!r} needs decoder torchcodec, not {decoder!r}")
    if not os.path.exists(path):
        raise VideoDecodeError(f"{path}: no such file", "missing")
    indexed = Path(path).suffix.lower() in _INDEXED_CONTAINERS
    if decoder == "torchcodec" and indexed:
        return TorchCodecReader(path, threads, short_side, _cuda_or_cpu(device))
    if decoder == "decord" and indexed:
        reader = DecordReader(path, threads, short_side)
        if not reader.has_preroll:
            return reader
        reader.close()
        log.debug("%s: edit-list pre-roll that decord misnumbers; reading it with PyAV", path)
    return PyAVReader(path, threads, short_side)


def _cuda_or_cpu(device: str) -> str:
    """``device``; "cuda" as this process's current CUDA device, or "cpu" (said once) without one."""
    if not device.startswith("cuda"):
        return device
    if not torch.cuda.is_available():
        _log_once("no CUDA device: decoding on the CPU")
        return "cpu"
    return f"cuda:{torch.cuda.current_device()}" if device == "cuda" else device
