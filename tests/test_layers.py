"""The layers are the layout: a lower layer never imports a higher one (../shared/STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "opencac"

# Lower number = lower layer. Layers on the same level may not import each other either,
# except where listed in ALLOWED.
ORDER = {
    "errors": 0, "codesets": 1, "text": 2, "nlp": 3, "coding": 4, "edits": 5,
    "learning": 6, "routing": 6, "audit": 7, "store": 8, "ui": 8,
    "service": 9, "batch": 9, "cli": 10,
}
ALLOWED = {("routing", "learning"), ("service", "batch")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("opencac."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("opencac."):
                    out.add(a.name.split(".")[1])
    return out


def _cases() -> list[tuple[str, Path]]:
    cases = []
    for layer in ORDER:
        d = SRC / layer
        if d.is_dir():
            cases += [(layer, p) for p in sorted(d.rglob("*.py"))]
    return cases


@pytest.mark.parametrize(("layer", "path"), _cases(), ids=lambda x: str(x).split("src/opencac/")[-1])
def test_no_upward_imports(layer: str, path: Path) -> None:
    for target in _imports(path):
        if target not in ORDER or target == layer or (layer, target) in ALLOWED:
            continue
        assert ORDER[target] < ORDER[layer], f"{path.relative_to(SRC)} ({layer}) imports higher layer {target}"
