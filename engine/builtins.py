"""The built-in scenarios: names, titles and paths, read without running them (no torch)."""

from __future__ import annotations

import ast
import inspect
from importlib import resources
from pathlib import Path


def builtin_dir() -> Path:
    return Path(str(resources.files("optdbg.scenarios")))


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.py") if not p.stem.startswith("_"))


def builtin_title(name: str) -> tuple[str, str]:
    """Title and description of a built-in, from its docstring."""
    return docstring_parts(read_docstring(builtin_dir() / f"{name}.py"))


def resolve(spec: str | Path) -> Path:
    """A path, or the name of a built-in scenario, to the scenario file."""
    path = Path(spec)
    if _exists(path) or path.suffix == ".py" or len(path.parts) > 1:
        return path
    builtin = builtin_dir() / f"{spec}.py"
    return builtin if _exists(builtin) else path


def _exists(path: Path) -> bool:
    """Path.exists, False for a name the system refuses (too long, say): loading then says
    why it cannot read it."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def docstring_parts(doc: str | None) -> tuple[str, str]:
    if not doc:
        return "", ""
    first, _, rest = doc.strip().partition("\n")
    return first.strip(), inspect.cleandoc(rest).strip()


def read_docstring(path: Path) -> str | None:
    try:
        return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8-sig")))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
        return None
