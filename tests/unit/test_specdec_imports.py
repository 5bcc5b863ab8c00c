"""The study's modules import one another without a circle: the pair loader
(``conditions``) and the decoding loop (``decoding``) share ``pairing`` and neither imports
the other, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "workflow" / "scripts" / "biasdrift" / "specdec"


def specdec_imports(module: str) -> set[str]:
    """The biasdrift.specdec modules that ``module`` imports anywhere (top level or in a function)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "biasdrift.specdec":
                out |= {alias.name for alias in node.names}
            elif node.module.startswith("biasdrift.specdec."):
                out.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[2] for a in node.names if a.name.startswith("biasdrift.specdec.")}
    return out


def test_conditions_and_decoding_do_not_import_each_other():
    assert "decoding" not in specdec_imports("conditions")
    assert "conditions" not in specdec_imports("decoding")
    assert "pairing" in specdec_imports("conditions") and "pairing" in specdec_imports("decoding")


def test_the_study_modules_import_no_circle():
    graph = {p.stem: specdec_imports(p.stem) for p in PACKAGE.glob("*.py")}

    def reach(start: str, node: str, seen: set[str]) -> bool:
        for nxt in graph.get(node, ()):
            if nxt == start:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reach(start, nxt, seen):
                    return True
        return False

    circles = sorted(m for m in graph if reach(m, m, set()))
    assert not circles, f"modules on an import circle: {circles}"
