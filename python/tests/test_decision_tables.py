"""Every decision table in examples/ (the ones `writ test` runs), decided through
Python: from the YAML sources, from the `.writ` translations, and from a compiled
bundle. Needs PyYAML to read the tables."""

from __future__ import annotations

from pathlib import Path

import pytest

import writ
from writ_testutil import EXAMPLES

yaml = pytest.importorskip("yaml")

TABLES = sorted(EXAMPLES.glob("*.decisions.yaml")) + sorted((EXAMPLES / "seeds").glob("*.decisions.yaml"))
REQUEST_KEYS = {"agent", "action", "target", "context", "chain", "tokens", "at", "token", "roles", "tags"}


def cases(table: Path):
    suite = yaml.safe_load(table.read_text())
    policies = [table.parent / p for p in suite["policies"]]
    return suite, policies


def writ_versions(policies: list[Path]) -> list[Path] | None:
    out = [p.with_suffix(".writ") for p in policies]
    return out if all(p.exists() for p in out) else None


def run_table(engine: writ.Engine, suite: dict, table: Path) -> None:
    now = suite.get("now")
    for case in suite["cases"]:
        req = dict(case["request"])
        unknown = set(req) - REQUEST_KEYS
        assert not unknown, f"{table.name}: {case['name']}: request keys {unknown}"
        req.setdefault("at", now)
        if "agent" not in req and req.get("chain"):
            req["agent"] = req["chain"][-1]
        for run in range(case.get("repeat", 1)):
            d = engine.check(**req)
            where = f"{table.name}: {case['name']} (run {run + 1})"
            for key, want in case["expect"].items():
                assert getattr(d, key) == want, f"{where}: {key} is {getattr(d, key)!r}, expected {want!r}"


def test_there_are_tables():
    assert len(TABLES) >= 10


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.name)
def test_table_from_yaml_sources(table):
    suite, policies = cases(table)
    run_table(writ.load(policies, dialect=suite.get("dialect")), suite, table)


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.name)
def test_table_from_writ_sources(table):
    suite, policies = cases(table)
    versions = writ_versions(policies)
    if versions is None:
        pytest.skip("no .writ translation")
    run_table(writ.load(versions), suite, table)


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.name)
def test_table_from_bundle(table, tmp_path):
    suite, policies = cases(table)
    out = tmp_path / "policy.wbundle"
    writ.compile(policies, out, dialect=suite.get("dialect"))
    run_table(writ.load(out), suite, table)
