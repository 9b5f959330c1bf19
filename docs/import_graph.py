"""Draw the package's layers and the imports between them, from the code, into
``docs/images/import_graph.png`` (run from the repository root: ``python docs/import_graph.py``).

The layers are the import-linter contract's in ``pyproject.toml``, highest first; an arrow
``a -> b`` labelled ``n`` says that ``n`` modules of ``a`` import ``b``. The edges are also
written into the PNG's ``Description`` text, so a test can tell a stale picture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import matplotlib

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter depends on tomli there
    import tomli as tomllib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "images" / "import_graph.png"


def layers() -> list[list[str]]:
    """The contract's layers, highest first, each a list of modules (``a | b`` are siblings)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]


def layer_edges() -> dict[tuple[str, str], int]:
    """(importing layer module, imported layer module) -> how many modules of the first import it."""
    sys.path.insert(0, str(REPO))
    graph = grimp.build_graph("videoswinv2", cache_dir=None)
    names = [name for layer in layers() for name in layer]

    def owner(module: str) -> str | None:
        return next((n for n in names if module == n or module.startswith(n + ".")), None)

    edges: dict[tuple[str, str], set[str]] = {}
    for module in graph.modules:
        source = owner(module)
        for imported in graph.find_modules_directly_imported_by(module):
            target = owner(imported)
            if source and target and source != target:
                edges.setdefault((source, target), set()).add(module)
    return {edge: len(modules) for edge, modules in sorted(edges.items())}


def size(name: str) -> str:
    """``n modules, m lines`` of a layer."""
    path = REPO / Path(*name.split("."))
    files = list(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    lines = sum(f.read_text().count("\n") for f in files)
    return f"{len(files)} module{'s' * (len(files) > 1)}, {lines} lines"


def draw(edges: dict[tuple[str, str], int]) -> None:
    """An arc diagram: the layers top to bottom, each import between two layers an arc on the
    right, as thick as the number of modules that import."""
    names = [name for layer in layers() for name in layer]
    row = {name: i for i, name in enumerate(names)}
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(names) + 0.8))
    for (source, target), count in edges.items():
        top, bottom = row[source], row[target]
        centre, radius = -(top + bottom) / 2, (bottom - top) / 2
        arc = matplotlib.patches.Arc(
            (0.0, centre),
            2 * radius * 0.55,
            2 * radius,
            theta1=-90,
            theta2=90,
            color="#5577aa",
            lw=0.5 + 0.6 * count,
            alpha=0.6,
        )
        ax.add_patch(arc)
    for name, i in row.items():
        ax.text(
            -0.08,
            -i,
            f"{name.removeprefix('videoswinv2.')}  ({size(name)})",
            ha="right",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle="round,pad=0.3", facecolor="#e8eef7", edgecolor="#5577aa"),
        )
        ax.plot([0], [-i], "o", color="#5577aa", ms=4)
    reach = max((row[b] - row[a] for a, b in edges), default=1) * 0.3
    ax.set_xlim(-4.2, reach + 0.3)
    ax.set_ylim(-len(names) + 0.4, 0.8)
    ax.set_axis_off()
    ax.set_title(
        "Layers, highest first; each arc: modules of the upper layer importing the lower", fontsize=9
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110, bbox_inches="tight", metadata={"Description": edges_text(edges)})
    plt.close(fig)


def edges_text(edges: dict[tuple[str, str], int]) -> str:
    return "; ".join(f"{a}->{b}:{n}" for (a, b), n in edges.items())


if __name__ == "__main__":
    draw(layer_edges())
    print(f"wrote {OUT}")
