"""The shape of the code, for the maintainability figures of issue #14: modules over 300
lines, the longest functions and the most complex ones (lines, and a McCabe-style count:
1 + branches, loops, handlers, boolean operators, comprehension clauses).

    python3 bench/code_shape.py .            # this checkout
    git archive REV installer_ext | tar -x -C /tmp/rev && python3 bench/code_shape.py /tmp/rev
"""

from __future__ import annotations

import ast
import os
import sys

BIG_MODULE = 300
_BRANCHES = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.IfExp, ast.ExceptHandler, ast.match_case)


def complexity(node: ast.AST) -> int:
    n = 1
    for x in ast.walk(node):
        if isinstance(x, _BRANCHES):
            n += 1
        elif isinstance(x, ast.BoolOp):
            n += len(x.values) - 1
        elif isinstance(x, ast.comprehension):
            n += 1 + len(x.ifs)
    return n


def measure(root: str) -> tuple[list[tuple[int, str]], list[tuple[int, int, str]]]:
    """(modules over BIG_MODULE lines, every function as (lines, complexity, where))."""
    big: list[tuple[int, str]] = []
    funcs: list[tuple[int, int, str]] = []
    for d, _, files in os.walk(os.path.join(root, "installer_ext")):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(d, name)
            with open(path, encoding="utf-8") as f:
                src = f.read()
            rel = os.path.relpath(path, root)
            if src.count("\n") > BIG_MODULE:
                big.append((src.count("\n"), rel))
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    funcs.append((node.end_lineno - node.lineno + 1, complexity(node), f"{rel}:{node.name}"))
    return sorted(big, reverse=True), funcs


def main() -> None:
    big, funcs = measure(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(f"modules over {BIG_MODULE} lines: {len(big)}: " + ", ".join(f"{r} {n}" for n, r in big))
    print("longest functions: " + ", ".join(f"{w} {n} lines (complexity {c})" for n, c, w in sorted(funcs, reverse=True)[:3]))
    print("most complex: " + ", ".join(f"{w} {c} ({n} lines)" for n, c, w in sorted(funcs, key=lambda t: -t[1])[:3]))


if __name__ == "__main__":
    main()
