"""Decoders return exactly the planned frames, PyAV, decord and torchcodec alike (resized while
decoding too, and on a GPU where there is one), and fail cleanly."""

import logging
import re
from pathlib import Path

import av
import pytest
import torch
import torch.nn.functional as F
import torchcodec

from videoswinv2.data import (
    ClipSpec,
    VideoDecodeError,
    center_clip,
    decoding,
    open_video,
    spread_clips,
    train_clip,
)
from videoswinv2.data.decoding import DecordReader, PyAVReader, TorchCodecReader
from videoswinv2.data.transforms import resize_short_side
from videoswinv2.data.view_stream import load_views
from videoswinv2.errors import UsageError
from videoswinv2.record import EvalViews

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

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


@pytest.mark.parametrize("other", ["decord", "torchcodec"])
@pytest.mark.parametrize("name", ["bikes", "carphone_pristine"])
def test_decoders_return_the_same_frames(other, name, data_sample_videos) -> None:
    path = str(data_sample_videos[name])
    with open_video(path, "pyav") as pyav_reader, open_video(path, other) as other_reader:
        assert pyav_reader.num_frames == other_reader.num_frames
        indices = [0, 1, 57, 58, other_reader.num_frames - 1]
        a, b = pyav_reader.read(indices).float(), other_reader.read(indices).float()
    # The bundled FFmpeg builds (and the system's, torchcodec's) could round colours differently
    # (measured: they agree to the bit), but an off-by-one frame would differ by several levels
    # on average (these videos move).
    assert (a - b).abs().mean() < 0.5
    assert (a[2] - b[3]).abs().mean() > 2


def _upright_numbers(frames: torch.Tensor, read) -> list[int]:
    """Numbers of frames resized to half the numbered size, read at full size again."""
    full = F.interpolate(frames.permute(0, 3, 1, 2).float(), scale_factor=2, mode="nearest")
    return read(full.permute(0, 2, 3, 1))


@pytest.mark.parametrize(
    "decoder", [*DECODERS, pytest.param("torchcodec+resize", marks=pytest.mark.torchcodec)]
)
@pytest.mark.parametrize("rotation", [0, -90])
def test_short_side_is_resized_while_decoding(
    decoder, rotation, data_make_numbered_video, data_frame_numbers, tmp_path, monkeypatch
) -> None:
    # torchcodec resizes in its colour conversion (on the GPU; on the CPU where asked to), the
    # others after it with torchvision's antialiased resize: the same frames, upright, within
    # rounding of each other.
    if decoder == "torchcodec+resize":
        decoder = "torchcodec"
        monkeypatch.setattr(decoding, "RESIZE_WHILE_DECODING_ON_CPU", True)
    path = data_make_numbered_video(tmp_path / "numbered.mp4", 40, rotation=rotation)
    indices = [0, 7, 13, 39, 7]
    with open_video(str(path), decoder, short_side=32) as small, open_video(str(path), decoder) as full:
        frames = small.read(indices)
        expected = resize_short_side(full.read(indices), 32).permute(0, 2, 3, 1)
        streamed = list(small.iter_frames(30))
        assert small.resizes_while_decoding == decoding.RESIZE_WHILE_DECODING_ON_CPU
    assert frames.shape == (5, 32, 60, 3) and frames.dtype == torch.uint8
    assert _upright_numbers(frames, data_frame_numbers) == indices
    assert (frames.float() - expected.float()).abs().mean() < (1.5 if small.resizes_while_decoding else 1e-6)
    assert [i for i, _ in streamed] == list(range(30, 40)) and streamed[0][1].shape == (32, 60, 3)
    assert _upright_numbers(torch.stack([f for _, f in streamed]), data_frame_numbers) == list(range(30, 40))


def test_torchcodec_without_ffmpeg_is_a_usage_error(data_numbered_video, monkeypatch) -> None:
    monkeypatch.setattr(torchcodec, "ffmpeg_major_version", None)
    with pytest.raises(UsageError, match="FFmpeg's shared libraries .*apt-get install ffmpeg"):
        open_video(str(data_numbered_video), "torchcodec")


def test_only_torchcodec_decodes_on_a_gpu(data_numbered_video) -> None:
    with pytest.raises(ValueError, match="needs decoder torchcodec"):
        open_video(str(data_numbered_video), "pyav", device="cuda")


@pytest.mark.torchcodec
def test_cuda_decoding_without_a_gpu_decodes_on_the_cpu_and_says_so_once(
    data_numbered_video, data_frame_numbers, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(decoding, "_logged", set())
    with caplog.at_level(logging.WARNING, "videoswinv2.data.decoding"):
        for _ in range(2):
            with open_video(str(data_numbered_video), "torchcodec", device="cuda") as reader:
                frames = reader.read([3, 50])
            assert frames.device.type == "cpu" and data_frame_numbers(frames) == [3, 50]
    assert caplog.messages == ["no CUDA device: decoding on the CPU"]


@cuda
@pytest.mark.parametrize("short_side", [None, 32])
def test_cuda_decoding_gives_the_cpu_frames(short_side, data_numbered_video, data_frame_numbers) -> None:
    path, indices = str(data_numbered_video), [89, 3, 3, 40, 0, 12]
    with open_video(path, "torchcodec", short_side=short_side, device="cuda") as gpu:
        frames = gpu.read(indices)
        streamed = [frame for _, frame in gpu.iter_frames(80)]
    assert frames.device.type == "cuda" and streamed[0].device.type == "cuda"
    with open_video(path, "torchcodec", short_side=short_side) as cpu:
        expected = cpu.read(indices)
    assert frames.shape == expected.shape
    read = data_frame_numbers if short_side is None else lambda f: _upright_numbers(f, data_frame_numbers)
    assert read(frames.cpu()) == indices and read(torch.stack(streamed).cpu()) == list(range(80, 90))
    # NVDEC's colour conversion is not FFmpeg's: close, not equal.
    assert (frames.cpu().float() - expected.float()).abs().mean() < 3


@cuda
def test_cuda_decoded_views_match_the_cpu_ones(data_sample_videos) -> None:
    views = EvalViews(num_clips=2, num_frames=8, short_side=128, crop_size=112, decoder="torchcodec")
    path = str(data_sample_videos["bikes"])
    gpu, cpu = load_views(views, path, "cuda"), load_views(views, path)
    assert gpu.device.type == "cuda" and gpu.shape == cpu.shape == (6, 3, 8, 112, 112)
    assert (gpu.cpu() - cpu).abs().mean() < 0.1  # normalised units: about 6 levels of 255
