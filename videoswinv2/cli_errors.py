"""Errors that end in one line naming the setting and the problem (jsonargparse's nested reports
condensed, "did you mean" for mistyped options)."""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import re
from collections.abc import Iterable
from typing import Any

_STRUCTURE = ("Does not validate against any", "Subtypes:", "Errors:", "Given value type:")


def _readable(reason: str) -> str:
    """jsonargparse's type wording -> plain words: ``Expected a <class 'int'>`` -> ``expected an int``."""
    reason = re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"\1", reason)
    reason = re.sub(r"^Expected a typing\.Literal\[(.*)\]", r"expected one of \1", reason)
    reason = re.sub(r"^Expected a (?=[aeiou])", "expected an ", reason)
    reason = re.sub(r"^Expected a ", "expected a ", reason)
    return re.sub(r"\. Got value: (.*)$", r", got '\1'", reason)


def _parameters(class_path: str) -> list[str]:
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return []
    return [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]


def _option_names(parser: argparse.ArgumentParser) -> list[str]:
    return [s[2:] for a in parser._actions for s in a.option_strings if s.startswith("--")]


def _did_you_mean(given: str, known: Iterable[str]) -> str | None:
    """The known dotted option nearest to ``given``, corrected part by part (``trainer.max_epochz``
    -> ``trainer.max_epochs``); parts past a known prefix with no known children stay as typed."""
    known_parts = [k.split(".") for k in known]
    fixed: list[str] = []
    for part in given.split("."):
        depth = len(fixed)
        children = {k[depth] for k in known_parts if k[:depth] == fixed and len(k) > depth}
        if part in children or not children:
            fixed.append(part)
            continue
        match = difflib.get_close_matches(part, children, n=1, cutoff=0.6)
        if match:
            fixed.append(match[0])
        elif fixed in known_parts:  # a class option (``model``): its init_args are not listed
            fixed += given.split(".")[depth:]
            break
        else:
            return None
    guess = ".".join(fixed)
    return guess if guess != given else None


def concise_error(message: str, parser: argparse.ArgumentParser | None = None) -> str:
    """One line out of jsonargparse's nested union-type report, the option and the problem (e.g.
    ``--data.init_args.decoder: expected one of 'pyav', 'decord', 'torchcodec', got 'fancy'``); a
    message of another shape as it is, with a "did you mean" for unrecognised options."""
    unrecognised = re.match(r"unrecognized arguments: (--[\w.\-]+)", message)
    if unrecognised:
        guess = _did_you_mean(unrecognised.group(1)[2:], _option_names(parser) if parser else [])
        return f"{message} (did you mean --{guess}?)" if guess else message
    keys: list[str] = []
    reasons: list[str] = []
    given = None
    class_path = ""
    for raw in message.splitlines():
        line = raw.strip().removeprefix("- ").strip()
        if not line or line.startswith(_STRUCTURE) or line == "Expected a <class 'NoneType'>":
            continue
        if match := re.fullmatch(r'Parser key "([^"]+)":', line):
            keys.append(match.group(1))
        elif match := re.fullmatch(r"Problem with given class_path '([^']+)':", line):
            class_path = match.group(1)
            keys.append("init_args")
        elif match := re.fullmatch(r"Option '([^']+)' is not accepted", line):
            guess = _did_you_mean(match.group(1), _parameters(class_path)) if class_path else None
            hint = f" (did you mean --{'.'.join(keys)}.{guess}?)" if guess else ""
            keys.append(match.group(1))
            reasons.append(f"unknown option{hint}")
        elif match := re.fullmatch(r"Given value: (.*)", line):
            nested = re.fullmatch(r"NestedArg\(key='[^']*', val='(.*)'\)", match.group(1))
            given = given or (nested.group(1) if nested else match.group(1))
        else:
            reasons.append(_readable(line))
    if not keys or not reasons:
        return message
    reason = "; ".join(dict.fromkeys(reasons))
    if given is not None and "got" not in reason and "unknown option" not in reason and len(given) < 80:
        reason += f", got {given!r}"
    return f"--{'.'.join(keys)}: {reason}"


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0]


def named_options(message: str, section: str, config: Any) -> str:
    """The ``--section.init_args.NAME`` options a message mentions (as a word, not ``NAME=``)."""
    init_args = config.get(f"{section}.init_args")
    names = [
        n
        for n in (vars(init_args) if init_args else {})
        if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w=])", message)
    ]
    return ", ".join(f"--{section}.init_args.{n}" for n in names) or f"--{section}"
