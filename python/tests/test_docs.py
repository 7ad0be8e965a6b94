"""The examples of docs/python.md run and say what the page says."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "python.md").read_text()


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE, flags=re.S)


def test_the_first_example_decides_as_shown() -> None:
    code = blocks()[0]
    # The last line is an expression and, in a comment, its value.
    lines = code.strip().splitlines()
    shown = lines[-1].lstrip("# ").strip()
    expression = lines[-2]
    scope: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec("\n".join(lines[:-2]), scope)
        value = eval(expression, scope)
    finally:
        os.chdir(cwd)
    assert value == ast.literal_eval(shown)


def test_every_python_block_parses() -> None:
    for code in blocks():
        # `await` at the top of a block is fine in an async context.
        ast.parse(code, mode="exec", feature_version=(3, 9)) if "await" not in code else compile(
            code, "<doc>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
