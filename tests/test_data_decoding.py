"""Decoders return exactly the planned frames, for both backends, and fail cleanly."""

import re
from pathlib import Path

import av
import pytest
import torch

from videoswinv2.data import (
    ClipSpec,
    VideoDecodeError,
    center_clip,
    open_video,
    spread_clips,
    train_clip,
)
from videoswinv2.data.decoding import DecordReader, PyAVReader, TorchCodecReader

DECODERS = ["pyav", "decord", "torchcodec"]


@pytest.mark.parametrize("decoder", DECODERS)
def test_plans_decode_to_the_planned_frames(decoder, data_numbered_video, data_frame_numbers) -> None:
    spec = ClipSpec(num_frames=8, frame_interval=3)  # span 22 of 90 frames
    generator = torch.Generator().manual_seed(0)
    with open_video(str(data_numbered_video), decoder) as reader:
        assert (reader.num_frames, reader.fps) == (90, 30.0)
        plans = [train_clip(90, 30.0, spec, generator) for _ in range(5)]
        plans += [center_clip(90, 30.0, spec), *spread_clips(90, 30.0, spec, num_clips=4)]
        for plan in plans:
            frames = reader.read(plan)
            assert frames.shape == (8, 64, 120, 3) and frames.dtype == torch.uint8
            assert data_frame_numbers(frames) == plan


@pytest.mark.parametrize("decoder", DECODERS)
def test_clip_running_past_the_end_repeats_the_last_frame(
    decoder, data_make_numbered_video, data_frame_numbers, tmp_path
) -> None:
    path = data_make_numbered_video(tmp_path / "short.mp4", 10)
    spec = ClipSpec(num_frames=8, frame_interval=2)  # span 15 > 10 frames
    with open_video(str(path), decoder) as reader:
        for plan in [
            train_clip(10, 30.0, spec),
            center_clip(10, 30.0, spec),
            *spread_clips(10, 30.0, spec, 3),
        ]:
            assert data_frame_numbers(reader.read(plan)) == [0, 2, 4, 6, 8, 9, 9, 9]


@pytest.mark.parametrize("decoder", DECODERS)
def test_any_order_and_repeats(decoder, data_numbered_video, data_frame_numbers) -> None:
    with open_video(str(data_numbered_video), decoder) as reader:
        indices = [89, 3, 3, 40, 0, 89, 12]  # across keyframes, backwards, repeated, last frame
        assert data_frame_numbers(reader.read(indices)) == indices
        with pytest.raises(IndexError, match="outside"):
            reader.read([90])


@pytest.mark.parametrize("decoder", DECODERS)
def test_variable_frame_rate_is_indexed_by_display_order(
    decoder, data_make_numbered_video, data_frame_numbers, tmp_path
) -> None:
    # Uneven gaps between timestamps: a reader assuming a constant rate would misnumber frames.
    path = data_make_numbered_video(tmp_path / "vfr.mp4", 40, pts_step=lambda i: 2 * i + (i % 3 == 0))
    with open_video(str(path), decoder) as reader:
        assert reader.num_frames == 40
        indices = [*range(0, 40, 3), 39]
        assert data_frame_numbers(reader.read(indices)) == indices


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("suffix", [".mkv", ".mov", ".webm", ".avi", ".ts"])
def test_other_containers(decoder, suffix, data_make_numbered_video, data_frame_numbers, tmp_path) -> None:
    # MPEG-TS seeks by estimate: PyAV's seeks land past the keyframe (then it decodes from the
    # start), decord would return neighbouring frames and torchcodec runs out of frames, so both
    # hand .ts files to PyAV.
    path = data_make_numbered_video(tmp_path / f"numbered{suffix}", 60)
    with open_video(str(path), decoder) as reader:
        assert reader.num_frames == 60
        for indices in ([5, 30, 31, 59, 13, 0], list(range(48, 60)), [59]):
            assert data_frame_numbers(reader.read(indices)) == indices
        expected = {"decord": DecordReader, "torchcodec": TorchCodecReader}.get(decoder, PyAVReader)
        assert isinstance(reader, PyAVReader if suffix == ".ts" else expected)


def _cut_with_edit_list(source: Path, target: Path, cut: int) -> None:
    """Remux ``source`` so that its first ``cut`` frames become edit-list pre-roll (what
    ``ffmpeg -ss T -c copy`` writes when T is not on a keyframe)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        shift = int(cut / (stream.average_rate * stream.time_base))
        for packet in src.demux(stream):
            if packet.size:
                packet.pts -= shift
                packet.dts -= shift
                packet.stream = out
                dst.mux(packet)


@pytest.mark.parametrize("decoder", DECODERS)
def test_edit_list_pre_roll_is_not_counted(
    decoder, data_make_numbered_video, data_frame_numbers, tmp_path
) -> None:
    # 200 frames in one GOP, the first 140 cut by the edit list: the player shows frames 140..199.
    source = data_make_numbered_video(tmp_path / "long.mp4", 200, gop=250)
    path = tmp_path / "cut.mp4"
    _cut_with_edit_list(source, path, 140)
    with open_video(str(path), decoder) as reader:
        # decord counts the 140 hidden frames too (and misnumbers all); the guard hands the
        # file to PyAV, which numbers what is shown, as torchcodec does.
        assert isinstance(reader, TorchCodecReader if decoder == "torchcodec" else PyAVReader)
        assert reader.num_frames == 60
        indices = [0, 1, 30, 58, 59]
        assert data_frame_numbers(reader.read(indices)) == [140 + i for i in indices]


def test_decord_is_used_when_its_index_is_sound(data_numbered_video) -> None:
    with open_video(str(data_numbered_video), "decord") as reader:
        assert isinstance(reader, DecordReader)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_videos_are_read_upright(
    decoder, rotation, data_make_numbered_video, data_frame_numbers, tmp_path
) -> None:
    # Stored 120x64 (or upside down) with a display rotation, as phones write them: read the
    # wrong way, the numbers would come out wrong or the frames 120x64.
    path = data_make_numbered_video(tmp_path / "phone.mp4", 40, rotation=rotation)
    with open_video(str(path), decoder) as reader:
        indices = [0, 7, 13, 39]
        frames = reader.read(indices)
    assert frames.shape == (4, 64, 120, 3)
    assert data_frame_numbers(frames) == indices


# The file each broken fixture is and the kind of VideoDecodeError it raises.
BROKEN = {
    "truncated": "truncated",
    "empty": "unreadable",
    "text": "unreadable",
    "audio_only": "no_video_stream",
    "missing": "missing",
}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_files_raise_a_decode_error_naming_the_file(decoder, kind, data_broken_videos) -> None:
    path = str(data_broken_videos[kind])

    def read() -> None:
        with open_video(path, decoder) as reader:
            reader.read(center_clip(reader.num_frames, reader.fps, ClipSpec(8, 2)))

    with pytest.raises(VideoDecodeError, match=re.escape(path)) as error:
        read()
    if decoder != "decord":  # decord's errors do not say why a file is unreadable
        assert error.value.kind == BROKEN[kind]


def test_truncated_file_is_reported_as_truncated(data_broken_videos) -> None:
    with pytest.raises(VideoDecodeError, match="truncated"):
        open_video(str(data_broken_videos["truncated"]), "pyav")


def test_unknown_decoder(data_numbered_video) -> None:
    with pytest.raises(ValueError, match="unknown decoder 'opencv'"):
        open_video(str(data_numbered_video), "opencv")  # type: ignore[arg-type]


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize(
    ("name", "shape", "fps"),
    [
        ("bikes", (272, 640), 25.0),
        ("bigbuckbunny", (720, 1280), 25.0),  # has an audio stream
        ("carphone_pristine", (144, 176), 30000 / 1001),
    ],
)
def test_real_sample_videos(decoder, name, shape, fps, data_sample_videos) -> None:
    with open_video(str(data_sample_videos[name]), decoder) as reader:
        assert reader.fps == pytest.approx(fps)
        plan = center_clip(reader.num_frames, reader.fps, ClipSpec(8, 2))
        frames = reader.read(plan)
    assert frames.shape == (8, *shape, 3) and frames.dtype == torch.uint8
    assert frames.float().std() > 10  # real picture content, not a blank buffer


@pytest.mark.parametrize("name", ["bikes", "carphone_pristine"])
def test_both_decoders_return_the_same_frames(name, data_sample_videos) -> None:
    path = str(data_sample_videos[name])
    with open_video(path, "pyav") as pyav_reader, open_video(path, "decord") as decord_reader:
        assert pyav_reader.num_frames == decord_reader.num_frames
        indices = [0, 1, 57, 58, decord_reader.num_frames - 1]
        a, b = pyav_reader.read(indices).float(), decord_reader.read(indices).float()
    # The two bundled FFmpeg builds may round colours differently, but an off-by-one frame
    # would differ by several levels on average (these videos move).
    assert (a - b).abs().mean() < 0.5
    assert (a[2] - b[3]).abs().mean() > 2
