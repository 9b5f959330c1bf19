"""A benchmark's results for the documentation: what ``--docs FOLDER`` of each benchmark script writes.

A script collects its tables, notes and matplotlib figures in a :class:`DocsResults` and writes
``FOLDER/<name>.results.md`` (headed by the command and the machine that produced it) and one
``FOLDER/<name>.png`` (``<name>-2.png``, ... for more figures) beside it. The benchmark pages of
the documentation include ``docs/benchmarks/<name>.results.md``, so

    python scripts/benchmark_resume.py --docs docs/benchmarks

replaces the figures the site shows with this run's. Rerun the script rather than editing the
files.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from matplotlib.figure import Figure

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    """CPU model and count, and the GPU if torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    described = f"{os.cpu_count()} x {cpu}"
    torch = sys.modules.get("torch")
    if torch is not None:
        if torch.cuda.is_available():
            described += f", {torch.cuda.get_device_name()}"
        described += f"; torch {torch.__version__}"
    return described


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran, as typed from the repository root."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    try:
        shown = script.relative_to(REPO).as_posix()
    except ValueError:
        shown = argv[0]
    return " ".join(["python", shlex.quote(shown), *map(shlex.quote, argv[1:])])


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


class DocsResults:
    """Tables, notes and figures of one benchmark run, written as Markdown and PNG files."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.blocks: list[str] = []
        self.figures: list[tuple[Figure, str]] = []

    def text(self, paragraph: str) -> None:
        self.blocks.append(paragraph.strip())

    def table(self, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
        self.blocks.append("\n".join(lines))

    def figure(self, figure: Figure, caption: str) -> None:
        self.figures.append((figure, caption))
        self.blocks.append(f"\0figure {len(self.figures) - 1}")

    def _figure_name(self, index: int) -> str:
        return f"{self.name}.png" if index == 0 else f"{self.name}-{index + 1}.png"

    def markdown(self, argv: Sequence[str] | None = None, when: datetime.date | None = None) -> str:
        when = when or datetime.date.today()
        head = [
            f"<!-- Written by scripts/docs_output.py for `{command_line(argv)}`: rerun it rather than editing. -->",
            "",
            f"Measured on {when.isoformat()} on {machine()}, by `{command_line(argv)}`.",
        ]
        body = []
        for block in self.blocks:
            if block.startswith("\0figure "):
                index = int(block.split()[1])
                caption = self.figures[index][1]
                block = f"![{caption}]({self._figure_name(index)})"
            body.append(block)
        return "\n\n".join(["\n".join(head), *body]) + "\n"

    def write(self, folder: Path | str) -> Path:
        """Write ``<name>.results.md`` and the figures into ``folder``; returns the Markdown file."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for index, (figure, _) in enumerate(self.figures):
            figure.savefig(folder / self._figure_name(index), dpi=110, bbox_inches="tight")
        path = folder / f"{self.name}.results.md"
        path.write_text(self.markdown(), encoding="utf-8")
        print(f"wrote {path}" + (f" and {len(self.figures)} figure(s)" if self.figures else ""))
        return path


def bar_figure(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    ylabel: str,
    title: str,
    low: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
) -> Figure:
    """One bar per label, with a min-max range when ``low`` and ``high`` are given."""
    figure = Figure(figsize=(7, 0.6 + 0.45 * len(labels)))
    axes = figure.add_subplot()
    positions = range(len(labels))
    error = None
    if low is not None and high is not None:
        error = [[v - lo for v, lo in zip(values, low)], [hi - v for v, hi in zip(values, high)]]
    axes.barh(positions, values, xerr=error, color="#4c72b0", capsize=3)
    axes.set_yticks(list(positions), labels)
    axes.invert_yaxis()
    axes.set_xlabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(axis="x", alpha=0.3)
    return figure


def grouped_bar_figure(
    groups: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    ylabel: str,
    title: str,
    errors: dict[str, Sequence[float]] | None = None,
) -> Figure:
    """Bars of several series side by side in each group (a NaN draws no bar)."""
    figure = Figure(figsize=(max(6, 1.4 * len(groups) * max(1, len(series)) / 2), 3.6))
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        positions = [g + (k - (len(series) - 1) / 2) * width for g in range(len(groups))]
        yerr = errors.get(name) if errors else None
        axes.bar(positions, values, width, yerr=yerr, label=name, capsize=3)
    axes.set_xticks(list(range(len(groups))), groups)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return figure
