"""Where a traced call came from, and what the script calls its parameters and optimizers.

Everything here reads the script's frames (their file, line, function and variables) and
never keeps a frame beyond the call.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch

_TORCH = os.path.dirname(torch.__file__) + os.sep
_ENGINE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_TUI = os.path.join(os.path.dirname(_ENGINE.rstrip(os.sep)), "tui") + os.sep
_SKIP = (_TORCH, _ENGINE, _TUI, "<frozen ")


@functools.cache
def _library(filename: str) -> bool:
    """torch's, optdbg's or the runner's file (cached: asked for every frame of every op)."""
    return filename.startswith(_SKIP) or filename.endswith(
        (os.sep + "runpy.py", os.sep + "contextlib.py")
    )


@dataclass(frozen=True)
class Where:
    """The script's line that made a call."""

    file: str
    line: int
    function: str

    @property
    def short(self) -> str:
        """`train.py:42`: the file's name and the line."""
        return f"{os.path.basename(self.file)}:{self.line}"


UNKNOWN = Where("?", 0, "?")


def script_frames() -> Iterator[FrameType]:
    """The caller's frames outside torch and optdbg, innermost first."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if not _library(frame.f_code.co_filename):
            yield frame
        frame = frame.f_back


def where() -> Where:
    """The innermost frame of the caller that is the script's (not torch's, not optdbg's)."""
    for frame in script_frames():
        code = frame.f_code
        return Where(code.co_filename, frame.f_lineno, code.co_name)
    return UNKNOWN


def _scopes(frame: FrameType) -> Iterator[tuple[str, Any]]:
    yield from frame.f_locals.items()
    if frame.f_globals is not frame.f_locals:
        yield from frame.f_globals.items()


def name_of(obj: object) -> str | None:
    """The variable (or `self` attribute) that holds `obj` in the caller's script frames."""
    for frame in script_frames():
        for key, value in _scopes(frame):
            if value is obj and not key.startswith("__"):
                return key
        owner = frame.f_locals.get("self")
        if owner is not None:
            for key, value in getattr(owner, "__dict__", {}).items():
                if value is obj:
                    return f"self.{key}"
    return None


def param_names(params: list[torch.Tensor]) -> dict[int, str]:
    """Names of `params` (by id) from the caller's script frames: `model.fc1.weight` for a
    module's parameter (the module holding the most parameters names it), `w` for a tensor
    bound to `w`. Parameters no variable reaches are left out."""
    wanted = {id(p) for p in params}
    found: dict[int, str] = {}
    for frame in script_frames():
        roots: list[tuple[int, str, torch.nn.Module]] = []
        for key, value in _scopes(frame):
            if key.startswith("__"):
                continue
            if isinstance(value, torch.nn.Module):
                roots.append((-sum(1 for _ in value.parameters()), key, value))
            elif isinstance(value, torch.Tensor) and id(value) in wanted:
                found.setdefault(id(value), key)
        owner = frame.f_locals.get("self")
        if owner is not None and not isinstance(owner, torch.nn.Module):
            for key, value in getattr(owner, "__dict__", {}).items():
                if isinstance(value, torch.nn.Module):
                    roots.append((-sum(1 for _ in value.parameters()), f"self.{key}", value))
        for _, key, module in sorted(roots, key=lambda r: r[0]):
            for name, p in module.named_parameters(prefix=key, remove_duplicate=False):
                if id(p) in wanted:
                    found.setdefault(id(p), name)
        if len(found) == len(wanted):
            break
    return found


def modules_of(params: list[torch.Tensor]) -> dict[str, torch.nn.Module]:
    """The script's modules holding any of `params`, by the variable (or `self` attribute)
    that holds them in the caller's script frames, those with the most parameters first
    (their submodules are named from them: `model.2`)."""
    wanted = {id(p) for p in params}
    found: dict[int, tuple[int, str, torch.nn.Module]] = {}
    for frame in script_frames():
        scopes = list(_scopes(frame))
        owner = frame.f_locals.get("self")
        if owner is not None and not isinstance(owner, torch.nn.Module):
            scopes += [(f"self.{k}", v) for k, v in getattr(owner, "__dict__", {}).items()]
        for key, value in scopes:
            if (
                isinstance(value, torch.nn.Module)
                and not key.startswith("_")
                and id(value) not in found
                and any(id(p) in wanted for p in value.parameters())
            ):
                found[id(value)] = (-sum(1 for _ in value.parameters()), key, value)
    return {key: module for _, key, module in sorted(found.values(), key=lambda r: r[0])}


def module_owners(params: list[torch.Tensor], names: dict[int, str]) -> dict[int, str]:
    """id(parameter) -> the module path its name starts with (`model.fc1`), for the graph."""
    owners = {}
    for p in params:
        name = names.get(id(p))
        if name is not None and "." in name:
            owners[id(p)] = name.rsplit(".", 1)[0]
    return owners
