"""The README and every page under ``docs/`` are true: their Python blocks run as written, and
every command line they show names configs, scripts, test files and options that exist
(LightningCLI commands parse with ``--print_config``, the package's tools with their own parsers,
scripts against their ``--help``, ``mkdocs`` commands against MkDocs' parser). The checks are
parametrised per file; ``tests/test_docs.py`` builds the site."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import runpy
import shlex
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
# The README and the pages, with the benchmark results the pages include.
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
NAMES = [doc.relative_to(REPO).as_posix() for doc in DOCS]
TEXTS = {name: doc.read_text(encoding="utf-8") for name, doc in zip(NAMES, DOCS)}
README = TEXTS["README.md"]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def _command_lines(text: str) -> list[str]:
    """The commands of a page's bash blocks and the ``$ `` lines of its output blocks:
    continuation lines joined, comments and the optional ``[...]`` parts dropped, ``a|b``
    alternatives reduced to the first."""
    lines = []
    shown = [line[2:] for block in _blocks(text, "") for line in block.splitlines() if line.startswith("$ ")]
    for block in [*_blocks(text, "bash"), "\n".join(shown)]:
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line or line.startswith("#"):
                continue
            line = re.sub(r"\s*\[[^\]]*\]", "", line)
            lines.append(re.sub(r"(\S)\|\S+", r"\1", line))
    return lines


def _script_commands(text: str) -> list[str]:
    """``python scripts/x.py ...`` of the bash blocks and of the prose (in backticks)."""
    found = {line for line in _command_lines(text) if line.startswith("python scripts/")}
    found |= {re.sub(r"\s*\[[^\]]*\]", "", span) for span in re.findall(r"`(python scripts/[^`]+)`", text)}
    return sorted(" ".join(line.split()) for line in found)


def _is_package_command(line: str) -> bool:
    return re.search(r"(^|\s)(videoswinv2|lightning)\s", line) is not None


COMMANDS = {name: _command_lines(text) for name, text in TEXTS.items()}
SCRIPT_COMMANDS = {name: _script_commands(text) for name, text in TEXTS.items()}


def _package_args(line: str) -> tuple[str, list[str]]:
    """``videoswinv2 ...`` / ``lightning ...`` (also after ``srun``, ``pip install ... &&`` or
    ``torchrun ... -m``) -> the program and its arguments."""
    tokens = shlex.split(line)
    start = next(i for i, token in enumerate(tokens) if token in ("videoswinv2", "lightning"))
    return tokens[start], tokens[start + 1 :]


@contextlib.contextmanager
def _argv(*argv: str):
    saved, sys.argv = sys.argv, list(argv)
    try:
        yield
    finally:
        sys.argv = saved


@cache
def _package_command_error(line: str) -> str | None:
    """Why a ``videoswinv2`` / ``lightning`` command line would not parse, or None."""
    program, args = _package_args(line)
    command = args[0]
    for flag, value in zip(args, args[1:]):
        if flag in ("-c", "--config") and not (REPO / value).is_file():
            return f"{line}: no config {value}"
    tools = cli._tools()
    out, err = io.StringIO(), io.StringIO()
    if program == "videoswinv2" and command in tools:
        parser = argparse.ArgumentParser(prog=f"videoswinv2 {command}", exit_on_error=False)
        tools[command][1](parser)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                parser.parse_args(args[1:])
        except (argparse.ArgumentError, SystemExit) as error:
            return f"{line}: {error} {' / '.join(err.getvalue().strip().splitlines()[-1:])}"
        return None
    if command not in ("fit", "validate", "test", "predict"):
        return f"{line}: {program} has no command {command}"
    # --print_config parses every option against the classes' signatures; a checkpoint path is
    # read by LightningCLI itself, so it is left out.
    kept = [a for i, a in enumerate(args) if a != "--ckpt_path" and (i == 0 or args[i - 1] != "--ckpt_path")]
    try:
        # LightningCLI warns when it is given arguments while sys.argv holds some (pytest's).
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _argv(program):
            cli.VideoSwinCLI(args=[*kept, "--print_config"], prog=program)
    except SystemExit as exit_info:
        if exit_info.code in (0, None):
            return None
        return f"{line}: {' / '.join(err.getvalue().strip().splitlines()[-2:])}"
    return f"{line}: --print_config did not exit"


def _mkdocs_command_error(line: str) -> str | None:
    """Why an ``mkdocs ...`` command line would not parse (MkDocs' own click parser), or None."""
    import click
    from mkdocs.__main__ import cli as mkdocs_cli

    args = shlex.split(line)[1:]
    command = mkdocs_cli.get_command(click.Context(mkdocs_cli), args[0])
    if command is None:
        return f"{line}: mkdocs has no command {args[0]}"
    try:
        command.make_context(f"mkdocs {args[0]}", args[1:])
    except click.ClickException as error:
        return f"{line}: {error.format_message()}"
    return None


def _pytest_command_error(line: str) -> str | None:
    tokens = shlex.split(line)
    paths = [t.split("::")[0] for t in tokens[tokens.index("pytest") + 1 :] if not t.startswith("-")]
    missing = [p for p in paths if not (REPO / p).exists()]
    return f"{line}: no {', '.join(missing)}" if missing else None


def test_the_readme_keeps_its_two_commands_first_and_stays_short() -> None:
    first = _blocks(README, "bash")[0]
    assert first.splitlines()[1] == "pip install -e . && lightning fit -c configs/smoke.yaml"
    assert first.splitlines()[4] == 'pip install -e ".[dev]" && pytest'  # what .ci/run runs
    assert 'pip install -e ".[dev]" && pytest' in (REPO / ".ci" / "run").read_text()
    assert len(README.splitlines()) <= 200


def _program_and_command(line: str) -> str:
    program, args = _package_args(line)
    return f"{program} {args[0]}"


def test_the_pages_show_commands_of_every_kind() -> None:
    shown = {
        name: {_program_and_command(line) for line in commands if _is_package_command(line)}
        for name, commands in COMMANDS.items()
    }
    everywhere = set().union(*shown.values())
    assert {"lightning fit", "videoswinv2 fit", "videoswinv2 test", "videoswinv2 predict"} <= everywhere
    assert {
        "videoswinv2 timeline",
        "videoswinv2 export",
        "videoswinv2 inflate",
        "videoswinv2 prepare",
    } <= everywhere
    assert {"videoswinv2 fit", "videoswinv2 test", "videoswinv2 predict", "videoswinv2 inflate"} <= shown[
        "README.md"
    ]
    scripts = {shlex.split(line)[1] for commands in SCRIPT_COMMANDS.values() for line in commands}
    assert {f"scripts/{p.name}" for p in (REPO / "scripts").glob("benchmark_*.py")} <= scripts


@pytest.mark.parametrize("name", NAMES)
def test_every_command_line_of_a_page_names_existing_configs_and_options(name: str) -> None:
    errors = []
    for line in COMMANDS[name]:
        if _is_package_command(line):
            errors.append(_package_command_error(line))
        elif line.startswith("mkdocs "):
            errors.append(_mkdocs_command_error(line))
        elif re.match(r"(\S+ )*pytest( |$)", line) and "&&" not in line:
            errors.append(_pytest_command_error(line))
    errors = [error for error in errors if error]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("name", NAMES)
def test_every_repository_path_a_page_names_exists(name: str) -> None:
    """Configs, scripts, tests, modules and pages named in backticks or links."""
    text = TEXTS[name]
    named = set(
        re.findall(r"`((?:configs|scripts|tests|docs|videoswinv2)/[\w./-]+\.(?:py|yaml|md|png))`", text)
    )
    named |= set(re.findall(r"\]\(((?:configs|scripts|tests|docs)/[\w./-]+)\)", text))
    missing = sorted(path for path in named if not (REPO / path).exists())
    assert not missing, f"{name} names {missing}"


@cache
def _script_helps() -> dict[str, str]:
    """Each script's ``--help``, read in this process (each imports torch and its libraries, which
    the tests have imported already) as ``python scripts/x.py --help`` prints it."""
    scripts = sorted(
        {
            shlex.split(line)[1]
            for commands in SCRIPT_COMMANDS.values()
            for line in commands
            if (REPO / shlex.split(line)[1]).is_file()
        }
    )
    helps = {}
    saved_argv, saved_path = sys.argv, list(sys.path)
    try:
        for script in scripts:
            out = io.StringIO()
            sys.argv = [script, "--help"]
            sys.path.insert(0, str((REPO / script).parent))  # as `python scripts/x.py` has it
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                runpy.run_path(str(REPO / script), run_name="__main__")
            helps[script] = out.getvalue()
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return helps


@pytest.mark.parametrize("name", [name for name in NAMES if SCRIPT_COMMANDS[name]])
def test_a_benchmark_command_names_an_existing_script_and_options(name: str) -> None:
    errors = []
    for line in SCRIPT_COMMANDS[name]:
        tokens = shlex.split(line)
        script = tokens[1]
        if not (REPO / script).is_file():
            errors.append(f"{line}: no {script}")
            continue
        help_text = _script_helps()[script]
        if "usage:" not in help_text:
            errors.append(f"{script} --help printed no usage")
        for option in (t.split("=")[0] for t in tokens[2:] if t.startswith("--")):
            if not re.search(rf"{re.escape(option)}\b", help_text):
                errors.append(f"{line}: {script} has no {option}")
    assert not errors, "\n".join(errors)


@pytest.fixture
def smoke_onnx(tmp_path) -> Path:
    """What the ONNX example reads: ``smoke.onnx`` in the current folder, exported from a small
    model whose file records its classes and views."""
    from videoswinv2.inference import load_model
    from videoswinv2.inference.export import export_model

    kwargs = {"embed_dim": 16, "depths": [1, 1], "num_heads": [2, 4], "window_size": [2, 4, 4]}
    views = EvalViews(num_clips=1, num_frames=4, short_side=32, crop_size=32)
    metadata = ModelRecord("videoswinv2_tiny", 3, kwargs, ("run", "jump", "sit"), asdict(views))
    model = create_model("videoswinv2_tiny", num_classes=3, **kwargs)
    save_state_dict(model.state_dict(), tmp_path / "tiny.safetensors", metadata.to_strings())
    export_model(load_model(tmp_path / "tiny.safetensors"), "onnx", tmp_path / "smoke.onnx")
    return tmp_path / "smoke.onnx"


PYTHON_BLOCKS = [(name, index) for name in NAMES for index in range(len(_blocks(TEXTS[name], "python")))]


@pytest.mark.parametrize(("name", "index"), PYTHON_BLOCKS, ids=[f"{n}-{i + 1}" for n, i in PYTHON_BLOCKS])
def test_a_python_block_runs_as_written(name: str, index: int, tmp_path, monkeypatch, request) -> None:
    code = _blocks(TEXTS[name], "python")[index]
    if "smoke.onnx" in code:
        tmp_path = request.getfixturevalue("smoke_onnx").parent
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace: dict = {"__name__": "docs"}
    exec(compile(code, f"{name} python block {index + 1}", "exec"), namespace)  # noqa: S102
    if "logits" in namespace:  # what the blocks' comments promise: (clips, classes)
        assert namespace["logits"].ndim == 2
