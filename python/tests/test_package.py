"""The package as its docs describe it: decisions have no truth value,
policy warnings are Python warnings, `import writ.agents` without the SDK
says what to install, and `check`'s signature is the same in the binding,
the stubs and docs/python.md."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import types
import warnings
from pathlib import Path

import pytest

import writ

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "examples" / "python" / "support.writ"
ESCALATING = ROOT / "examples" / "delegation-open.writ"


# --- a decision has no truth value ---


@pytest.fixture(scope="module")
def engine() -> writ.Engine:
    return writ.load(SUPPORT)


def test_no_decision_has_a_truth_value(engine: writ.Engine) -> None:
    allow = engine.check("billing-agent", "read:customer", "lookup_customer")
    deny = engine.check("billing-agent", "write:refund", "refund", context={"amount": 500})
    approve = engine.check("billing-agent", "delete:customer", "delete_customer")
    assert [d.decision for d in (allow, deny, approve)] == ["allow", "deny", "approve"]
    for d in (allow, deny, approve):
        with pytest.raises(TypeError, match=r"decision\.allowed"):
            bool(d)
        with pytest.raises(TypeError):
            if d:  # the mistake the error is for
                pass
        with pytest.raises(TypeError):
            _ = not d
    # `.allowed` is the test, and an approve is not allowed (yet).
    assert [d.allowed for d in (allow, deny, approve)] == [True, False, False]


def test_defaulted_says_whether_the_policy_default_answered(engine: writ.Engine, tmp_path: Path) -> None:
    nothing = engine.check("billing-agent", "launch:rocket")
    assert (nothing.decision, nothing.rule, nothing.defaulted) == ("deny", None, True)
    ruled = engine.check("billing-agent", "write:refund", "refund", context={"amount": 500})
    assert (ruled.decision, ruled.defaulted) == ("deny", False)
    # A chain's strict ceiling denies because a member gets the default:
    # that is the ceiling's decision, not the default's.
    ceiling = engine.check("billing-agent", "launch:rocket", chain=["triage-agent", "billing-agent"])
    assert ceiling.decision == "deny" and ceiling.reason.startswith("strict ceiling")
    assert ceiling.defaulted is False
    assert ceiling.to_dict()["defaulted"] is False
    # So is a denied hop of the chain.
    hop = engine.check("billing-agent", "read:customer", "lookup_customer", chain=["stranger", "billing-agent"])
    assert (hop.decision, hop.defaulted) == ("deny", False)
    # A default with its own reason is still the default.
    p = tmp_path / "p.writ"
    p.write_text('policy "p" {\n  default approve because "{agent} asks a human"\n}\n')
    d = writ.load(p).check("bot", "anything")
    assert (d.decision, d.reason, d.defaulted) == ("approve", "bot asks a human", True)


# --- policy warnings ---


def test_load_issues_policy_warnings_at_the_caller() -> None:
    with pytest.warns(writ.PolicyWarning) as caught:
        engine = writ.load(ESCALATING)
    texts = [str(w.message) for w in caught]
    assert any("warning[W0204]: privilege escalation" in t for t in texts), texts
    assert texts == engine.warnings
    # The warning points at the line that loaded the policy.
    assert {w.filename for w in caught} == {__file__}
    assert issubclass(writ.PolicyWarning, UserWarning)


def test_a_clean_policy_issues_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine = writ.load(SUPPORT)
    assert engine.warnings == []


def test_policy_warnings_can_be_made_errors() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", writ.PolicyWarning)
        with pytest.raises(writ.PolicyWarning, match=r"W0204"):
            writ.load(ESCALATING)


def test_policy_warnings_can_be_filtered_by_code() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=r".*\[W0204\]", category=writ.PolicyWarning)
        writ.load(ESCALATING)
    assert not [w for w in caught if "W0204" in str(w.message)]


def test_compile_and_reload_issue_policy_warnings(tmp_path: Path) -> None:
    with pytest.warns(writ.PolicyWarning, match=r"W0204"):
        bundle = writ.compile(ESCALATING)
    assert isinstance(bundle, bytes) and bundle
    p = tmp_path / "p.writ"
    p.write_text(SUPPORT.read_text())
    engine = writ.load(p)
    p.write_text(ESCALATING.read_text())
    with pytest.warns(writ.PolicyWarning, match=r"W0204") as caught:
        engine.reload()
    assert {w.filename for w in caught} == {__file__}


# --- import writ.agents without the SDK ---


@pytest.fixture
def fresh_writ_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets a test import writ.agents anew; the module every other test
    uses is put back afterwards."""
    monkeypatch.delitem(sys.modules, "writ.agents", raising=False)
    if hasattr(writ, "agents"):
        monkeypatch.delattr(writ, "agents")


def test_importing_writ_agents_without_the_sdk_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, fresh_writ_agents: None
) -> None:
    for name in [m for m in sys.modules if m == "agents" or m.startswith("agents.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "agents", None)  # `import agents` fails
    with pytest.raises(ImportError, match=re.escape('pip install "writ[agents]"')) as raised:
        importlib.import_module("writ.agents")
    assert raised.value.name == "agents"


def test_importing_writ_agents_with_a_too_old_sdk_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, fresh_writ_agents: None
) -> None:
    old = types.ModuleType("agents")  # an SDK without the names writ uses
    monkeypatch.setitem(sys.modules, "agents", old)
    with pytest.raises(ImportError, match=r"OpenAI Agents SDK 0\.4 or later: pip install"):
        importlib.import_module("writ.agents")


def test_the_agents_extra_is_declared() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "python" / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["agents"]
    assert any(re.match(r"openai-agents\s*>=\s*0\.4", req) for req in extra), extra


# --- check's signature: binding, stubs and docs agree ---


def _docs_signature() -> str:
    page = (ROOT / "docs" / "python.md").read_text()
    found = re.findall(r"^- `engine\.check\((.*?)\)`$", page, flags=re.M)
    assert len(found) == 1, found
    return found[0]


def _stub_check() -> ast.FunctionDef:
    stub = ast.parse((ROOT / "python" / "writ" / "_writ.pyi").read_text())
    engine = next(n for n in stub.body if isinstance(n, ast.ClassDef) and n.name == "Engine")
    return next(n for n in engine.body if isinstance(n, ast.FunctionDef) and n.name == "check")


def test_check_signature_agrees_in_binding_stubs_and_docs() -> None:
    sig = inspect.signature(writ.Engine.check)
    binding = [
        (p.name, "keyword" if p.kind is p.KEYWORD_ONLY else "positional", p.default)
        for p in sig.parameters.values()
        if p.name != "self"
    ]

    docs_fn = ast.parse(f"def check({_docs_signature()}): pass").body[0]
    assert isinstance(docs_fn, ast.FunctionDef)

    def params(fn: ast.FunctionDef) -> list[tuple[str, str, object]]:
        a = fn.args
        positional = [p for p in a.args if p.arg != "self"]
        pos_defaults = [inspect.Parameter.empty] * (len(positional) - len(a.defaults)) + [
            ast.literal_eval(d) for d in a.defaults
        ]
        kw_defaults = [
            inspect.Parameter.empty if d is None else ast.literal_eval(d) for d in a.kw_defaults
        ]
        return [(p.arg, "positional", d) for p, d in zip(positional, pos_defaults)] + [
            (p.arg, "keyword", d) for p, d in zip(a.kwonlyargs, kw_defaults)
        ]

    assert params(docs_fn) == binding
    assert params(_stub_check()) == binding
    # The keyword-only arguments are what they say.
    engine = writ.load(SUPPORT)
    d = engine.check("billing-agent", "read:customer", "lookup_customer", None, None, 0, None, None,
                     token=None, roles=["r"], tags=["t"], dry_run=True)
    assert d.allowed
    with pytest.raises(TypeError):
        engine.check("billing-agent", "read:customer", "lookup_customer", None, None, 0, None, None, None)
