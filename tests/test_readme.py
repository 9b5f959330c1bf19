"""The README is true: its Python blocks run as written, and every command line it shows names
configs, scripts and options that exist (LightningCLI commands parse with ``--print_config``,
the package's tools with their own parsers, scripts against their ``--help``)."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from dataclasses import asdict
from functools import cache
from pathlib import Path

import pytest
import torch

from videoswinv2 import cli, create_model
from videoswinv2.checkpoints import save_state_dict
from videoswinv2.record import EvalViews, ModelRecord

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def _command_lines() -> list[str]:
    """The commands of the README's bash blocks: continuation lines joined, comments and the
    optional ``[...]`` parts dropped, ``a|b`` alternatives reduced to the first."""
    lines = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line or line.startswith("#"):
                continue
            line = re.sub(r"\s*\[[^\]]*\]", "", line)
            lines.append(re.sub(r"(\S)\|\S+", r"\1", line))
    return lines


COMMANDS = _command_lines()
PACKAGE_COMMANDS = [line for line in COMMANDS if re.search(r"(^|\s)(videoswinv2|lightning)\s", line)]
# Scripts are named in bash blocks and in the prose (`python scripts/x.py --option`).
SCRIPT_COMMANDS = sorted(
    {line for line in COMMANDS if line.startswith("python scripts/")}
    | {re.sub(r"\s*\[[^\]]*\]", "", span) for span in re.findall(r"`(python scripts/[^`]+)`", README)}
)


def _package_args(line: str) -> tuple[str, list[str]]:
    """``videoswinv2 ...`` / ``lightning ...`` (also after ``srun`` or ``torchrun ... -m``) ->
    the program and its arguments."""
    tokens = shlex.split(line)
    start = next(i for i, token in enumerate(tokens) if token in ("videoswinv2", "lightning"))
    return tokens[start], tokens[start + 1 :]


def test_the_readme_shows_commands_of_every_kind() -> None:
    programs = {_package_args(line)[0] + " " + _package_args(line)[1][0] for line in PACKAGE_COMMANDS}
    for expected in ("lightning fit", "videoswinv2 fit", "videoswinv2 test", "videoswinv2 predict"):
        assert expected in programs
    assert {"videoswinv2 timeline", "videoswinv2 export", "videoswinv2 inflate"} <= programs
    assert len(SCRIPT_COMMANDS) >= 5


@pytest.mark.parametrize("line", PACKAGE_COMMANDS)
def test_a_package_command_names_existing_configs_and_options(line: str, capsys) -> None:
    program, args = _package_args(line)
    command = args[0]
    for flag, value in zip(args, args[1:]):
        if flag in ("-c", "--config"):
            assert (REPO / value).is_file(), f"{line}: no config {value}"
    tools = cli._tools()
    if program == "videoswinv2" and command in tools:
        parser = argparse.ArgumentParser(prog=f"videoswinv2 {command}", exit_on_error=False)
        tools[command][1](parser)
        try:
            parser.parse_args(args[1:])
        except (argparse.ArgumentError, SystemExit) as error:
            pytest.fail(f"{line}: {error} {capsys.readouterr().err}")
        return
    assert command in ("fit", "validate", "test", "predict"), line
    # --print_config parses every option against the classes' signatures; a checkpoint path is
    # read by LightningCLI itself, so it is left out.
    kept = [a for i, a in enumerate(args) if a != "--ckpt_path" and (i == 0 or args[i - 1] != "--ckpt_path")]
    with pytest.raises(SystemExit) as exit_info:
        cli.VideoSwinCLI(args=[*kept, "--print_config"], prog=program)
    assert exit_info.value.code in (0, None), f"{line}: {capsys.readouterr().err[-2000:]}"


# Each script's --help, all read in one process (each imports torch and its libraries).
_HELP_OF_SCRIPTS = """
import contextlib, io, json, runpy, sys
helps = {}
for script in sys.argv[1:]:
    out = io.StringIO()
    sys.argv = [script, "--help"]
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        runpy.run_path(script, run_name="__main__")
    helps[script] = out.getvalue()
print(json.dumps(helps))
"""


@cache
def _script_helps() -> dict[str, str]:
    scripts = sorted(
        {shlex.split(line)[1] for line in SCRIPT_COMMANDS if (REPO / shlex.split(line)[1]).is_file()}
    )
    result = subprocess.run(
        [sys.executable, "-c", _HELP_OF_SCRIPTS, *scripts],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("line", SCRIPT_COMMANDS)
def test_a_benchmark_command_names_an_existing_script_and_options(line: str) -> None:
    tokens = shlex.split(line)
    script = tokens[1]
    assert (REPO / script).is_file(), f"{line}: no {script}"
    help_text = _script_helps()[script]
    assert "usage:" in help_text, f"{script} --help printed no usage"
    for option in (t.split("=")[0] for t in tokens[2:] if t.startswith("--")):
        assert re.search(rf"{re.escape(option)}\b", help_text), f"{line}: {script} has no {option}"


@pytest.fixture
def smoke_onnx(tmp_path) -> Path:
    """What the README's ONNX example reads: ``smoke.onnx`` in the current folder, exported from a
    small model whose file records its classes and views."""
    from videoswinv2.inference import load_model
    from videoswinv2.inference.export import export_model

    kwargs = {"embed_dim": 16, "depths": [1, 1], "num_heads": [2, 4], "window_size": [2, 4, 4]}
    views = EvalViews(num_clips=1, num_frames=4, short_side=32, crop_size=32)
    metadata = ModelRecord("videoswinv2_tiny", 3, kwargs, ("run", "jump", "sit"), asdict(views))
    model = create_model("videoswinv2_tiny", num_classes=3, **kwargs)
    save_state_dict(model.state_dict(), tmp_path / "tiny.safetensors", metadata.to_strings())
    export_model(load_model(tmp_path / "tiny.safetensors"), "onnx", tmp_path / "smoke.onnx")
    return tmp_path / "smoke.onnx"


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_a_python_block_runs_as_written(index: int, tmp_path, monkeypatch, request) -> None:
    code = _blocks("python")[index]
    if "smoke.onnx" in code:
        tmp_path = request.getfixturevalue("smoke_onnx").parent
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace: dict = {"__name__": "readme"}
    exec(compile(code, f"README.md python block {index + 1}", "exec"), namespace)  # noqa: S102
    if "logits" in namespace:  # what the blocks' comments promise: (clips, classes)
        assert namespace["logits"].ndim == 2
