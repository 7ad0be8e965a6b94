"""The examples of docs/python.md run and say what the page says."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
from pathlib import Path

import pytest

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


def _in_a_scratch_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs a block where its relative paths work (`examples/...`) and its
    files (audit logs) land in `tmp_path`."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)


def test_the_audit_example_records_a_masked_decision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import writ

    code = next(b for b in blocks() if "audit_mask" in b)
    _in_a_scratch_dir(tmp_path, monkeypatch)
    exec(code, {"writ": writ})
    records = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert len(records) == 1
    (r,) = records
    assert (r["decision"], r["rule"], r["trace_id"]) == ("allow", "refund_small", "run-7")
    assert r["context"] == {"amount": 20, "currency": "USD", "api_token": "***"}
    assert writ.verify_audit(tmp_path / "decisions.jsonl")["intact"]


def test_the_agents_sdk_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Agents SDK example, with every model call answered by a
    scripted model instead of OpenAI."""
    pytest.importorskip("agents")
    import agents
    from agents.models.multi_provider import MultiProvider

    from scripted import call, model, say

    agents.set_tracing_disabled(True)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-offline-test")
    scripted = model(
        "gpt-4.1-mini",
        [
            [call("transfer_to_billing_agent", {}, "h1")],
            [call("refund", {"customer_id": "c42", "amount": 42.5}, "r1")],
            [say("Refunded 42.50.")],
        ],
    )
    asked: list[object] = []

    def get_model(self: object, name: object) -> object:
        asked.append(name)
        return scripted

    monkeypatch.setattr(MultiProvider, "get_model", get_model)
    code = next(b for b in blocks() if "governed_handoff(engine, billing)" in b)
    _in_a_scratch_dir(tmp_path, monkeypatch)
    scope: dict[str, object] = {}
    run = eval(compile(code, "<docs/python.md>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT), scope)
    asyncio.run(run)
    result = scope["result"]
    assert result.final_output == "Refunded 42.50."  # type: ignore[attr-defined]
    assert result.last_agent.name == "billing-agent"  # type: ignore[attr-defined]
    assert set(asked) == {"gpt-4.1-mini"}
    scope["engine"].close()  # type: ignore[attr-defined]
    decided = [
        (r["action"], r["target"], r["decision"])
        for r in map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines())
        if r["reason"] != "event"
    ]
    assert decided == [
        ("model:use", "gpt-4.1-mini", "allow"),
        ("agent:delegate", "billing-agent", "allow"),
        ("model:use", "gpt-4.1-mini", "allow"),
        ("write:refund", "refund", "allow"),
        ("model:use", "gpt-4.1-mini", "allow"),
    ]


def test_every_documented_signature_is_the_code_s() -> None:
    """`- \\`name(args)\\`` lines of the page give the real parameters: names,
    kinds and defaults (a default written as a name is that object)."""
    import inspect

    import writ

    pytest.importorskip("agents")
    import writ.agents

    namespace = {**vars(writ), **vars(writ.agents), "writ": writ}
    found = [f for f in re.findall(r"^- `([\w.]+)\((.*?)\)`", PAGE, flags=re.M) if f[1] != "..."]
    names = {n for n, _ in found}
    assert {"writ.load", "engine.check", "governed_tool", "govern_agent", "governed_handoff", "WritHooks"} <= names
    for name, args in found:
        target: object = (
            getattr(writ.Engine, name.split(".")[1]) if name.startswith("engine.") else eval(name, namespace)
        )
        sig = inspect.signature(target)
        real = [
            (p.name, p.kind, p.default)
            for p in sig.parameters.values()
            if p.name != "self"
        ]
        fn = ast.parse(f"def f({args}): pass").body[0]
        assert isinstance(fn, ast.FunctionDef)
        a = fn.args
        value = lambda d: eval(compile(ast.Expression(d), "<docs>", "eval"), namespace)  # noqa: E731
        empty = inspect.Parameter.empty
        pos = [(p.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in a.args]
        pos_defaults = [empty] * (len(a.args) - len(a.defaults)) + [value(d) for d in a.defaults]
        documented = [(n, k, d) for (n, k), d in zip(pos, pos_defaults)]
        documented += [
            (p.arg, inspect.Parameter.KEYWORD_ONLY, empty if d is None else value(d))
            for p, d in zip(a.kwonlyargs, a.kw_defaults)
        ]
        if a.kwarg is not None:
            documented.append((a.kwarg.arg, inspect.Parameter.VAR_KEYWORD, empty))
        assert documented == real, name
