"""``videoswinv2 timeline``: where windows fall, their exact frames from one decode, segments,
and the command end to end (rows, segments, picture, resume, failures)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from videoswinv2.cli import main
from videoswinv2.data.clip_planning import ClipSpec
from videoswinv2.data.decoding import DECODERS, open_video
from videoswinv2.data.timeline import TimelineSpec, TimelineTask, timeline_tasks
from videoswinv2.inference.inputs import mirrored_path
from videoswinv2.inference.timeline import Window, merge_segments
from videoswinv2.record import INPUT_MEAN, INPUT_STD

CLIP = ClipSpec(num_frames=4, frame_interval=3)  # a span of 10 frames


def _frames_of_views(views: torch.Tensor) -> torch.Tensor:
    """Three crops ``(3, C, T, 64, 64)`` of 64x120 frames, normalised -> the whole frames
    ``(T, 64, 120, C)`` uint8 (left crop: columns 0-63, right crop: columns 56-119)."""
    mean, std = torch.tensor(INPUT_MEAN), torch.tensor(INPUT_STD)
    pixels = views.permute(0, 2, 3, 4, 1) * std + mean  # (3, T, H, W, C)
    whole = torch.cat([pixels[0], pixels[2][:, :, 8:]], dim=2)
    return whole.round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("decoder", DECODERS)
def test_each_window_holds_the_frames_its_start_and_end_name(
    decoder, tmp_path, data_make_numbered_video, data_frame_numbers, monkeypatch
):
    video = str(data_make_numbered_video(tmp_path / "numbered.mp4", 103, fps=10, gop=20))
    spec = TimelineSpec(CLIP, 0.5, short_side=64, crop_size=64, crops=3, decoder=decoder)
    decoded: list[int] = []
    reader_class = type(open_video(video, decoder))
    original = reader_class.iter_frames

    def counted(self, start=0):
        for index, frame in original(self, start):
            decoded.append(index)
            yield index, frame

    monkeypatch.setattr(reader_class, "iter_frames", counted)
    windows = list(TimelineTask(video, spec))
    assert len(windows) == 20 and sorted(decoded) == list(range(103))  # every frame decoded once
    for k, (item, views) in enumerate(windows):
        assert item.window.number == k and views.shape == (3, 3, 4, 64, 64)
        first, end = round(item.window.start_s * 10), round(item.window.end_s * 10)
        assert data_frame_numbers(_frames_of_views(views)) == list(range(first, end, 3))
    last = windows[-1][0].window
    assert (last.start_s, last.end_s) == (9.3, 10.3)  # the last frame is 102
    centre = list(TimelineTask(video, TimelineSpec(CLIP, 0.5, 64, 64, crops=1, decoder=decoder)))
    assert all(torch.equal(one[1][0], three[1][1]) for one, three in zip(centre, windows))

    # Two parts cover the windows once, each decoding only its own stretch (the second from
    # frame 50, the first of window 10); windows done already are skipped.
    parts = timeline_tasks([video], spec, workers=2, skip={str(Path(video).resolve()): frozenset({12})})
    decoded.clear()
    got = [item.window.number for task in parts for item, _ in task]
    assert got == [k for k in range(20) if k != 12]
    assert decoded == [*range(0, 55), *range(50, 103)]


def test_a_short_video_gives_one_window_that_repeats_its_last_frame(
    tmp_path, data_make_numbered_video, data_frame_numbers
):
    video = str(data_make_numbered_video(tmp_path / "short.mp4", 6, fps=10))
    [(item, views)] = list(TimelineTask(video, TimelineSpec(CLIP, 1.0, 64, 64, crops=3)))
    assert (item.window.start_s, item.window.end_s) == (0.0, 0.6)
    assert data_frame_numbers(_frames_of_views(views)) == [0, 3, 5, 5]


def _windows(labels: str, stride: float = 1.0, span: float = 2.0) -> list[Window]:
    return [
        Window(k, k * stride, k * stride + span, ((label, 0.5 + k / 100),)) for k, label in enumerate(labels)
    ]


def test_segments_meet_half_way_between_window_centres_and_short_ones_join_a_neighbour():
    segments = merge_segments(_windows("AAABAACC"))  # centres 1, 2, ..., 8
    assert [(s.label, s.start_s, s.end_s, s.windows) for s in segments] == [
        ("A", 0.0, 3.5, 3),
        ("B", 3.5, 4.5, 1),
        ("A", 4.5, 6.5, 2),
        ("C", 6.5, 9.0, 2),
    ]
    assert segments[0].mean_prob == pytest.approx((0.5 + 0.51 + 0.52) / 3)
    merged = merge_segments(_windows("AAABAACC"), min_seconds=1.5)  # B (1 s) joins A: one A run
    assert [(s.label, s.start_s, s.end_s, s.windows) for s in merged] == [
        ("A", 0.0, 6.5, 6),
        ("C", 6.5, 9.0, 2),
    ]
    assert merged[0].mean_prob == pytest.approx(sum([0.5, 0.51, 0.52, 0.54, 0.55]) / 5)  # A windows only
    assert merge_segments(_windows("AB"), min_seconds=100) == merge_segments(_windows("AB"), 100)[:1]
    assert merge_segments([]) == []


# -- the command ---------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path, newline="")))


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, data_make_numbered_video) -> Path:
    """15 s at 10 fps: 13 windows of the smoke clip (16 frames x 2: 3.1 s) a second apart."""
    return data_make_numbered_video(tmp_path_factory.mktemp("long") / "long video.mp4", 150, fps=10)


def _timeline(smoke_run, *args: str) -> int:
    common = ["--ckpt", str(smoke_run["ckpt"]), "--precision", "32", "--no-progress", "--num-workers", "0"]
    return main(["timeline", *args, *common])


def test_timeline_writes_windows_segments_and_a_picture_and_continues_where_it_stopped(
    smoke_run, long_video, data_broken_videos, tmp_path, capsys
):
    out = tmp_path / "tl.csv"
    broken = str(data_broken_videos["truncated"])
    assert _timeline(smoke_run, str(long_video), broken, "--stride-seconds", "1", "--output", str(out)) == 1
    err = capsys.readouterr().err
    assert "1 videos done, 1 failed" in err and broken in err.splitlines()[-1]
    rows = _rows(out)
    windows = [r for r in rows if r["status"] == "ok"]
    assert [int(r["window"]) for r in windows] == list(range(13))  # starts 0..11 s, then 11.9 s
    assert (windows[0]["start_s"], windows[0]["end_s"]) == ("0.000", "3.100")  # 31 frames
    assert (windows[-1]["start_s"], windows[-1]["end_s"]) == ("11.900", "15.000")
    assert [r["video"] for r in rows if r["status"] == "failed"] == [broken]
    segments = _rows(tmp_path / "tl.segments.csv")
    ok_segments = [s for s in segments if s["status"] == "ok"]
    assert ok_segments[0]["start_s"] == "0.000" and ok_segments[-1]["end_s"] == "15.000"
    assert sum(int(s["windows"]) for s in ok_segments) == 13
    assert [r["video"] for r in segments if r["status"] == "failed"] == [broken]
    picture = tmp_path / "tl_plots" / mirrored_path(str(long_video), ".png")
    assert picture.is_file() and 5_000 < picture.stat().st_size < 100_000
    record = json.loads((tmp_path / "tl.csv.videoswinv2.json").read_text())
    assert record["written_by"] == "videoswinv2 timeline" and record["settings"]["stride_s"] == 1.0

    # A killed run: the last row cut short, segments and picture not yet written. The rerun
    # computes only the missing windows and writes what an uninterrupted run wrote.
    full = out.read_text()
    lines = full.splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(str(broken))]
    out.write_text("".join(kept[:8]) + kept[8][:20])
    (tmp_path / "tl.segments.csv").write_text("")
    picture.unlink()
    assert _timeline(smoke_run, str(long_video), "--stride-seconds", "1", "--output", str(out)) == 0
    assert "1 videos done, 0 failed" in capsys.readouterr().err
    redone = _rows(out)
    assert sorted(int(r["window"]) for r in redone) == list(range(13))
    for row in redone:  # the same windows (up to the float rounding of other batch sizes)
        first = windows[int(row["window"])]
        assert (row["start_s"], row["end_s"], row["top1_label"]) == (
            first["start_s"],
            first["end_s"],
            first["top1_label"],
        )
        assert float(row["top1_prob"]) == pytest.approx(float(first["top1_prob"]), abs=1e-5)
    assert picture.is_file()
    assert _timeline(smoke_run, str(long_video), "--stride-seconds", "1", "--output", str(out)) == 0
    assert "0 videos done, 0 failed, 1 skipped" in capsys.readouterr().err

    # Other settings: one line, nothing changed; --overwrite redoes everything.
    before = out.read_bytes()
    assert _timeline(smoke_run, str(long_video), "--stride-seconds", "2", "--output", str(out)) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "other settings (stride_s differ)" in last and "--overwrite" in last
    assert out.read_bytes() == before
    args = [str(long_video), "--stride-seconds", "2", "--output", str(out), "--overwrite", "--three-crops"]
    assert _timeline(smoke_run, *args) == 0
    assert len(_rows(out)) == 7


def test_timeline_prints_segments_without_output_and_refuses_a_folder(
    smoke_run, long_video, tmp_path, capsys
):
    assert _timeline(smoke_run, str(long_video), "--stride-seconds", "3", "--min-segment-seconds", "20") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == str(long_video) and len(lines) == 2 and "0.00 -    15.00 s" in lines[1]
    assert _timeline(smoke_run, str(long_video), "--stride-seconds", "3", "--output", str(tmp_path)) == 2
    assert "is a folder" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.torchcodec
def test_windows_decoded_on_the_gpu_hold_the_cpu_frames(tmp_path, data_make_numbered_video):
    # torchcodec on the GPU (NVDEC's colours differ a little), or on the CPU where there is none.
    video = str(data_make_numbered_video(tmp_path / "numbered.mp4", 40, fps=10))
    spec = TimelineSpec(CLIP, 0.5, short_side=64, crop_size=64, decoder="torchcodec")
    cpu = list(TimelineTask(video, spec))
    gpu = list(TimelineTask(video, TimelineSpec(**{**spec.__dict__, "device": "cuda"})))
    assert [item for item, _ in gpu] == [item for item, _ in cpu]
    for (_, a), (_, b) in zip(gpu, cpu):
        assert a.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
        assert (a.cpu() - b).abs().mean() < 0.1
