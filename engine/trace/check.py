"""Whether SCRIPT can be run at all (no torch needed to tell)."""

from __future__ import annotations

from pathlib import Path


class ScriptError(Exception):
    """SCRIPT cannot be run at all (missing, a folder, not Python text): optdbg's usage error."""


def check_script(path: str) -> Path:
    """The script's path, or ScriptError saying why it cannot be run."""
    p = Path(path)
    if not p.exists():
        raise ScriptError(f"{path}: no such file")
    if p.is_dir():
        if not (p / "__main__.py").is_file():
            raise ScriptError(f"{path} is a folder without __main__.py: give the script's path")
        return p
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ScriptError(f"{path}: cannot read it ({e.strerror or e})") from None
    if b"\0" in data[:4096]:
        raise ScriptError(f"{path} is not a Python file (it holds binary data)")
    return p
