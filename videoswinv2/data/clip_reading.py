"""The frames of a video's clips, each frame decoded (and transformed) once however many clips
share it: the one way training samples, multi-view test clips and timeline windows are read.

A clip is a list of frame indices (from :mod:`videoswinv2.data.clip_planning`). Two ways to
hold the frames, one result:

- together (the default): the frames of all clips are read at once, seeking to each stretch
  they need (:meth:`VideoReader.read`), and kept until the last clip is out; a few clips of a
  video (training, test views);
- streamed (``stream=True``): the video is decoded in order from the first clip's first frame
  (:meth:`VideoReader.iter_frames`, one seek at most) and a frame is kept only until the last
  clip using it is out, so memory holds about one clip's frames whatever the number of clips
  (timeline windows along a whole video).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import torch

from videoswinv2.data.decoding import VideoDecodeError, VideoReader

FrameTransform = Callable[[torch.Tensor], torch.Tensor]


def read_clips(
    reader: VideoReader,
    clips: Sequence[Sequence[int]],
    transform: FrameTransform | None = None,
    stream: bool = False,
) -> Iterator[torch.Tensor]:
    """Each clip's frames, in the order of ``clips``: ``(T, H, W, C)`` uint8 as decoded, or what
    ``transform`` makes of them (it maps ``(N, H, W, C)`` uint8 frames to ``(N, ...)``).

    Together, a clip whose frames are evenly spaced among those read is a view of them, not a
    copy. Streamed, ``clips`` must be sorted by their last frame. Raises
    :class:`VideoDecodeError` for a video that cannot be read.
    """
    if stream:
        return _streamed(reader, clips, transform or (lambda frames: frames))
    return _together(reader, clips, transform)


def _together(
    reader: VideoReader, clips: Sequence[Sequence[int]], transform: FrameTransform | None
) -> Iterator[torch.Tensor]:
    unique = sorted({i for clip in clips for i in clip})
    frames = reader.read(unique)  # (U, H, W, C): one pass over the video for every clip
    if transform is not None:
        frames = transform(frames)
    position = {frame: k for k, frame in enumerate(unique)}
    # Read now, selected as the clips are asked for: a copy (uneven positions) one clip at a time.
    return (_select(frames, [position[i] for i in clip]) for clip in clips)


def _select(frames: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """``frames[positions]``, as a view where the positions are evenly spaced (copying the
    frames would cost about as much as converting their colours)."""
    step = positions[1] - positions[0] if len(positions) > 1 else 1
    if step > 0 and positions == list(range(positions[0], positions[-1] + 1, step)):
        return frames[positions[0] : positions[-1] + 1 : step]
    return frames[positions]


def _streamed(
    reader: VideoReader, clips: Sequence[Sequence[int]], transform: FrameTransform
) -> Iterator[torch.Tensor]:
    uses = Counter(i for clip in clips for i in set(clip))
    buffer: dict[int, torch.Tensor] = {}
    pending = 0
    for index, frame in reader.iter_frames(min(uses)):
        if index in uses:
            buffer[index] = transform(frame[None])[0]
        while pending < len(clips) and clips[pending][-1] <= index:
            clip = clips[pending]
            missing = [i for i in clip if i not in buffer]
            if missing:
                raise VideoDecodeError(f"the decoder never produced frame {missing[0]}")
            yield torch.stack([buffer[i] for i in clip])
            for i in set(clip):
                uses[i] -= 1
                if uses[i] == 0:
                    del uses[i]
                    buffer.pop(i, None)
            pending += 1
        if pending == len(clips):
            return
    if pending < len(clips):
        raise VideoDecodeError(f"decoding ended before frame {clips[pending][-1]}")
