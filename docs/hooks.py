"""MkDocs hooks: the reference pages that follow the code (``hooks:`` in ``mkdocs.yml``).

- **API reference**: one page per public module of ``videoswinv2``, found by walking the
  package's files at every build (a module whose name has a part starting with ``_`` is
  private), each rendered from its docstrings by mkdocstrings. A module that moves, appears or
  goes changes the pages and the navigation with it; nothing lists modules by hand.
- **CLI reference**: the ``--help`` of every command ``videoswinv2 --help`` lists, produced by
  running the parsers in one subprocess (the tools' argparse parsers; LightningCLI's for
  ``fit`` / ``validate`` / ``test``), and the options of the model and data classes
  (``--model.help CLASS``, ``--data.help CLASS``) for every LightningModule and
  LightningDataModule the package exports.
- **Short references**: ``[ResumableSampler][]`` (or ``[`ResumableSampler`][]``, or
  ``[VideoClassifier.predict_step][]``) in a page links to the API entry of the object of that
  name, in whichever module defines it at build time. A name defined in no module, or in two,
  fails the build.
- Sphinx roles in docstrings (``:class:`X```) are shown as code.

The navigation names the generated sections by their index pages, ``reference/api/index.md``
and ``reference/cli/index.md``; the hooks put the generated pages under them.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

PACKAGE = "videoswinv2"
API_INDEX = "reference/api/index.md"
CLI_INDEX = "reference/cli/index.md"
HELP_WIDTH = "100"  # columns of the rendered --help texts


# -- the package's modules, read from its files ----------------------------------------------------


def public_modules(root: Path) -> list[str]:
    """Dotted names of the package's public modules and packages, sorted (packages first)."""
    names = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        names.append(".".join(parts))
    return sorted(names, key=lambda name: name.split("."))


def _module_file(root: Path, module: str) -> Path:
    path = root.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _first_sentence(docstring: str | None) -> str:
    """The docstring's first sentence on one line, Sphinx roles shown as code, ready for a table."""
    if not docstring:
        return ""
    paragraph = " ".join(docstring.strip().split("\n\n")[0].split())
    sentence = re.split(r"(?<=\.)\s(?=[A-Z(`])", paragraph, maxsplit=1)[0].rstrip(":;")
    sentence = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", sentence)
    return sentence.replace("|", "\\|")


class Package:
    """What the package's files say, read with ``ast`` (nothing is imported): its public
    modules, the top-level names each defines, and where the names a package exports come from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules = public_modules(root)
        self.trees = {m: ast.parse(_module_file(root, m).read_text(encoding="utf-8")) for m in self.modules}
        # every public object path (modules too), for the short references
        self.paths: list[str] = []
        self.docs: dict[str, str | None] = {}
        for module, tree in self.trees.items():
            self.paths.append(module)
            self.docs[module] = ast.get_docstring(tree)
            for name, node in self.defined(tree).items():
                self.paths.append(f"{module}.{name}")
                self.docs[f"{module}.{name}"] = (
                    ast.get_docstring(node)
                    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    else None
                )

    @staticmethod
    def defined(tree: ast.Module) -> dict[str, ast.stmt]:
        """The public names a module defines at its top level."""
        found: dict[str, ast.stmt] = {}
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                continue
            found.update({name: node for name in names if not name.startswith("_")})
        return found

    def is_package(self, module: str) -> bool:
        return _module_file(self.root, module).name == "__init__.py"

    def _imported_from(self, module: str, name: str) -> tuple[str, str] | None:
        """(module, name) that ``module`` imports ``name`` from, if it does."""
        package = module if self.is_package(module) else module.rsplit(".", 1)[0]
        for node in self.trees[module].body:
            if not isinstance(node, ast.ImportFrom):
                continue
            for alias in node.names:
                if (alias.asname or alias.name) != name:
                    continue
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                return source, alias.name
        return None

    def resolve(self, module: str, name: str) -> str | None:
        """The path where ``module``'s ``name`` is defined, following re-exports."""
        for _ in range(10):
            if module not in self.trees:
                return None
            if name in self.defined(self.trees[module]):
                return f"{module}.{name}"
            found = self._imported_from(module, name)
            if found is None:
                return None
            module, name = found
        return None

    def exports(self, module: str) -> list[str]:
        """The names in a module's ``__all__`` (public ones)."""
        for node in self.trees[module].body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                return [n for n in ast.literal_eval(node.value) if not n.startswith("_")]
        return []

    def lookup(self, name: str) -> list[str]:
        """Object paths that end with ``name`` (a name, or its last dotted parts)."""
        return [p for p in self.paths if p == name or p.endswith("." + name)]


def api_page(module: str, package: Package) -> str:
    path = "reference/api/" + module.replace(".", "/")
    return path + ("/index.md" if package.is_package(module) else ".md")


def api_markdown(module: str, package: Package) -> str:
    lines = [f"# `{module}`", "", f"::: {module}"]
    if not package.is_package(module):
        return "\n".join(lines) + "\n"
    # A package's page: its docstring, the names it exports and its modules, each linked to the
    # page that documents it (so nothing is documented twice).
    here = posixpath.dirname(api_page(module, package))
    exported = [(name, package.resolve(module, name)) for name in package.exports(module)]
    # A package that defines names itself (a registry in its __init__) documents just those.
    own = list(package.defined(package.trees[module]))
    lines += [
        "    options:",
        f"      members: {json.dumps(own) if own else 'false'}",
        "      show_root_heading: false",
        "",
    ]
    if exported:
        example = next(
            (name for name, _ in exported if name[0].isupper() and not name.isupper()), exported[0][0]
        )
        lines += [
            "## Exported names",
            "",
            f"Import them from the package: `from {module} import {example}`.",
            "",
            "| name | defined in | |",
            "|---|---|---|",
        ]
        for name, target in exported:
            if target is None:  # not a module of this package (e.g. a constant it computes)
                lines.append(f"| `{name}` | `{module}` | |")
                continue
            owner = target.rsplit(".", 1)[0]
            link = posixpath.relpath(api_page(owner, package), here)
            lines.append(
                f"| [`{name}`][{target}] | [`{owner}`]({link}) | {_first_sentence(package.docs.get(target))} |"
            )
        lines.append("")
    children = [m for m in package.modules if m.rsplit(".", 1)[0] == module]
    if children:
        lines += ["## Modules", "", "| module | |", "|---|---|"]
        for child in children:
            link = posixpath.relpath(api_page(child, package), here)
            lines.append(f"| [`{child}`]({link}) | {_first_sentence(package.docs.get(child))} |")
        lines.append("")
    return "\n".join(lines)


def api_nav(package: Package) -> list[Any]:
    """The API pages' navigation: the top package's page, then its modules and subpackages, a
    subpackage being a section whose first page is its own."""

    def items(parent: str) -> list[Any]:
        out: list[Any] = []
        for module in package.modules:
            if module.rsplit(".", 1)[0] != parent or module == parent:
                continue
            short = module.rsplit(".", 1)[-1]
            if package.is_package(module):
                out.append({short: [api_page(module, package), *items(module)]})
            else:
                out.append({short: api_page(module, package)})
        return out

    return [{PACKAGE: api_page(PACKAGE, package)}, *items(PACKAGE)]


def api_index(package: Package) -> str:
    """The table of modules on the API reference's index page."""
    lines = ["| module | |", "|---|---|"]
    for module in package.modules:
        link = posixpath.relpath(api_page(module, package), posixpath.dirname(API_INDEX))
        lines.append(f"| [`{module}`]({link}) | {_first_sentence(package.docs.get(module))} |")
    return "\n".join(lines) + "\n"


# -- the command line, from its parsers -----------------------------------------------------------

# Run in a subprocess (the package's imports stay out of MkDocs' process): prints JSON with the
# `--help` of the `videoswinv2` command, of each command it lists, of `lightning predict`, of
# every LightningModule / LightningDataModule the subpackages export (`--model.help CLASS`), and
# the whole config of configs/smoke.yaml as `--print_config` shows it.
_HELP_SCRIPT = r"""
import contextlib, importlib, inspect, io, json, pkgutil, re, sys
import lightning.pytorch as pl
import videoswinv2
from videoswinv2 import cli

def capture(function, argv, prog, expect="usage:"):
    sys.argv = [prog, *argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            function(argv) if function is cli.main else function()
        except SystemExit:
            pass
    if expect not in out.getvalue().split("\n", 1)[0]:
        raise SystemExit(f"{prog} {' '.join(argv)} printed no {expect!r}: {err.getvalue()[-2000:]}")
    return out.getvalue()

main_help = capture(cli.main, ["--help"], "videoswinv2")
listing = main_help.split("commands:\n", 1)[1].split("\n\n", 1)[0]
commands = [
    {"name": name, "description": description, "help": capture(cli.main, [name, "--help"], "videoswinv2")}
    for name, description in re.findall(r"^  (\S+)\s{2,}(.*)$", listing, flags=re.M)
]
classes = {"model": [], "data": []}
for info in pkgutil.iter_modules(videoswinv2.__path__):
    if not info.ispkg or info.name.startswith("_"):
        continue
    module = importlib.import_module(f"videoswinv2.{info.name}")
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if not inspect.isclass(obj):
            continue
        kind = "model" if issubclass(obj, pl.LightningModule) else "data" if issubclass(obj, pl.LightningDataModule) else None
        if kind:
            path = f"{module.__name__}.{name}"
            doc = inspect.getdoc(obj) or ""
            help = capture(cli.main, ["fit", f"--{kind}.help", path], "videoswinv2")
            classes[kind].append({"class_path": path, "doc": doc.split("\n\n")[0], "help": help})
lightning_predict = capture(cli.lightning_main, ["predict", "--help"], "lightning")
smoke = capture(cli.main, ["fit", "-c", "configs/smoke.yaml", "--print_config"], "videoswinv2", "# lightning")
print(json.dumps({"main": main_help, "commands": commands, "classes": classes,
                  "lightning_predict": lightning_predict, "smoke_config": smoke}))
"""


def read_parsers(root: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "COLUMNS": HELP_WIDTH,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise PluginError(f"the CLI reference could not be generated:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def _fenced(text: str) -> str:
    return "```text\n" + text.rstrip() + "\n```\n"


def cli_page(command: str) -> str:
    return f"reference/cli/{command}.md"


CLASSES_PAGE = "reference/cli/model-and-data.md"
LIGHTNING_COMMANDS = ("fit", "validate", "test")


def cli_pages(parsers: dict[str, Any]) -> dict[str, str]:
    """src path -> markdown of every generated CLI page."""
    pages = {}
    for command in parsers["commands"]:
        name = command["name"]
        lines = [
            f"# `videoswinv2 {name}`",
            "",
            command["description"][0].upper() + command["description"][1:] + ".",
            "",
        ]
        if name in LIGHTNING_COMMANDS:
            lines += [
                "A LightningCLI command: `-c CONFIG` reads a YAML config, every option below can be "
                "given in it or on the command line, and `--print_config` shows the result. The "
                "options of the model and data classes (`--model.init_args.*`, `--data.init_args.*`) "
                f"are on [Model and data options]({posixpath.relpath(CLASSES_PAGE, 'reference/cli')}).",
                "",
            ]
        lines += [f"`videoswinv2 {name} --help`:", "", _fenced(command["help"])]
        pages[cli_page(name)] = "\n".join(lines)
    lines = [
        "# Model and data options",
        "",
        "The classes a config's `model: class_path:` and `data: class_path:` can name, and their "
        "options. In a config they go under `init_args:`; on the command line they are "
        "`--model.init_args.NAME VALUE` (or `--model.NAME VALUE`) and `--data.init_args.NAME VALUE`.",
        "",
    ]
    for kind, title in (("model", "Models"), ("data", "Data modules")):
        lines += [f"## {title}", ""]
        for entry in parsers["classes"][kind]:
            path = entry["class_path"]
            lines += [
                f"### `{path}`",
                "",
                _first_sentence(entry["doc"]) + f" ([API][{path}])",
                "",
                f"`videoswinv2 fit --{kind}.help {path}`:",
                "",
                _fenced(entry["help"]),
            ]
    lines += [
        "## `lightning predict`",
        "",
        "Under `lightning`, `predict` is LightningCLI's own (under `videoswinv2` it is the video "
        "predictor): it runs the model's `predict_step` over the data module's predict split.",
        "",
        "`lightning predict --help`:",
        "",
        _fenced(parsers["lightning_predict"]),
    ]
    pages[CLASSES_PAGE] = "\n".join(lines)
    return pages


def cli_nav(parsers: dict[str, Any]) -> list[Any]:
    return [
        CLI_INDEX,
        *({f"videoswinv2 {c['name']}": cli_page(c["name"])} for c in parsers["commands"]),
        {"Model and data options": CLASSES_PAGE},
    ]


def cli_index(parsers: dict[str, Any]) -> str:
    lines = ["`videoswinv2 --help`:", "", _fenced(parsers["main"]), "| command | |", "|---|---|"]
    for command in parsers["commands"]:
        link = posixpath.relpath(cli_page(command["name"]), posixpath.dirname(CLI_INDEX))
        lines.append(f"| [`videoswinv2 {command['name']}`]({link}) | {command['description']} |")
    link = posixpath.relpath(CLASSES_PAGE, posixpath.dirname(CLI_INDEX))
    lines.append(f"| [model and data options]({link}) | the options of the classes a config names |")
    return "\n".join(lines) + "\n"


# -- the configs -----------------------------------------------------------------------------------


def configs_markdown(root: Path) -> str:
    """Every file of ``configs/``, each in a folded block."""
    lines = []
    for path in sorted((root / "configs").glob("*.yaml")):
        text = path.read_text(encoding="utf-8").rstrip()
        lines += [f'??? example "`configs/{path.name}`"', "", "    ```yaml"]
        lines += [f"    {line}".rstrip() for line in text.splitlines()]
        lines += ["    ```", ""]
    return "\n".join(lines)


# -- the benchmark results ----------------------------------------------------------------------


def benchmark_results(docs_dir: Path) -> str:
    """Each ``docs/benchmarks/*.results.md``: the page that includes it, and whether a script wrote
    it (with the date and machine of the run) or it holds figures carried over from the README."""
    folder = docs_dir / "benchmarks"
    pages = {
        include: (page.name, page.read_text(encoding="utf-8").split("\n", 1)[0].lstrip("# "))
        for page in sorted(folder.glob("*.md"))
        if not page.name.endswith(".results.md")
        for include in re.findall(r'^--8<-- "benchmarks/([^"]+)"', page.read_text(encoding="utf-8"), re.M)
    }
    lines = ["| results | page | where they come from |", "|---|---|---|"]
    for path in sorted(folder.glob("*.results.md")):
        text = path.read_text(encoding="utf-8")
        measured = re.search(r"^Measured on (\S+) on (.*?), by `", text, flags=re.M)
        if text.startswith("<!-- Written by scripts/docs_output.py") and measured:
            state = f"written by the script on {measured.group(1)} ({measured.group(2)})"
        elif text.startswith("<!-- Carried over"):
            state = "carried over from the README, not yet regenerated"
        else:
            state = "not measured yet"
        page = pages.get(path.name)
        shown = f"[{page[1]}]({page[0]})" if page else "included by no page"
        lines.append(f"| `{path.name}` | {shown} | {state} |")
    return "\n".join(lines) + "\n"


# -- the hooks ------------------------------------------------------------------------------------

_state: dict[str, Any] = {}


def _sources_stamp(root: Path) -> tuple:
    sources = [*(root / PACKAGE).rglob("*.py"), *(root / "configs").glob("*.yaml")]
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in sources))


def _expand_nav(items: list[Any], sections: dict[str, list[Any]]) -> list[Any]:
    """Replace each nav entry whose page is a key of ``sections`` by that section."""
    out = []
    for item in items:
        if isinstance(item, dict):
            (title, value), *_ = item.items()
            if isinstance(value, str) and value in sections:
                item = {title: sections[value]}
            elif isinstance(value, list):
                item = {title: _expand_nav(value, sections)}
        out.append(item)
    return out


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    root = Path(config.config_file_path).resolve().parent
    stamp = _sources_stamp(root)
    if _state.get("stamp") != stamp:  # `mkdocs serve` rebuilds: read the parsers again only on change
        package = Package(root)
        parsers = read_parsers(root)
        _state.update(stamp=stamp, package=package, parsers=parsers, root=root)
    package, parsers = _state["package"], _state["parsers"]
    _state["pages"] = {
        **{api_page(m, package): api_markdown(m, package) for m in package.modules},
        **cli_pages(parsers),
    }
    config.nav = _expand_nav(
        config.nav, {API_INDEX: [API_INDEX, *api_nav(package)], CLI_INDEX: cli_nav(parsers)}
    )
    # pymdownx.snippets reads relative base paths from the working directory: make them the
    # repository's, so that a build from anywhere includes the same files.
    snippets = config.mdx_configs.get("pymdownx.snippets")
    if snippets:
        snippets["base_path"] = [str(root / p) for p in snippets.get("base_path", ["."])]
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for src, content in _state["pages"].items():
        files.append(File.generated(config, src, content=content))
    return files


# [name][] / [`name`][] / [text][name], where name is not a full path (full paths are autorefs' own)
_SHORT_REFERENCE = re.compile(r"\[([^\]\n]+)\]\[([A-Za-z_][A-Za-z0-9_.]*)?\]")


def _resolve(name: str, page: Page) -> str | None:
    """The full path of a short name (its last dotted parts), or None if the package has none."""
    package: Package = _state["package"]
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        found = package.lookup(".".join(parts[:cut]))
        if len(found) > 1:
            raise PluginError(
                f"{page.file.src_uri}: [{name}] could be any of {', '.join(found)}: "
                "write more of its path ([data.timeline][], [inference.timeline][])"
            )
        if found:
            return ".".join([found[0], *parts[cut:]])
    return None


def short_references(markdown: str, page: Page) -> str:
    """Rewrite the short references of a page into autorefs' (objects) or page links (modules)."""
    package: Package = _state["package"]

    def link(match: re.Match) -> str:
        text, name = match.groups()
        name = name or text.strip("`")
        if name.startswith(PACKAGE + ".") or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            return match.group(0)
        target = _resolve(name, page)
        if target is None:
            return match.group(0)  # autorefs reports it if it resolves nowhere
        if target in package.modules:
            here = posixpath.dirname(page.file.src_uri)
            return f"[{text}]({posixpath.relpath(api_page(target, package), here)})"
        return f"[{text}][{target}]"

    # Code blocks are left as they are.
    parts = re.split(r"(^```.*?^```[^\n]*$)", markdown, flags=re.S | re.M)
    return "".join(part if i % 2 else _SHORT_REFERENCE.sub(link, part) for i, part in enumerate(parts))


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    markers = {
        "<!-- generated: modules -->": lambda: api_index(_state["package"]),
        "<!-- generated: commands -->": lambda: cli_index(_state["parsers"]),
        "<!-- generated: configs -->": lambda: configs_markdown(_state["root"]),
        "<!-- generated: benchmark results -->": lambda: benchmark_results(Path(config.docs_dir)),
        "<!-- generated: smoke config -->": lambda: _fenced(_state["parsers"]["smoke_config"]).replace(
            "```text", "```yaml", 1
        ),
    }
    for marker, make in markers.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return short_references(markdown, page)


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    # Docstrings use Sphinx roles (:class:`~a.B`); Markdown leaves ":class:" before the code.
    html = re.sub(r":(?:class|func|meth|mod|attr|data|exc|obj):(?=<code>)", "", html)
    return html.replace("<code>~", "<code>")
