"""The divergences of issue 19, through the Python package (the runtime).

Each policy here is also in tests/engines_agree.rs, where the runtime and
the reference evaluator are held to each other; these tests check that the
package decides the same way agents embedding it will.
"""

from __future__ import annotations

import datetime as dt

import pytest

import writ

OPEN = 'policy "p" {\n  default allow\n}\n'
START = dt.datetime(2025, 1, 15, 10, 0, 0, tzinfo=dt.timezone.utc)


def load(tmp_path, text, name="p.writ"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return writ.load(p)


def effects(engine, calls):
    return [engine.check(**c).decision for c in calls]


def test_divergence_1_star_matches_newlines(tmp_path):
    e = load(tmp_path, OPEN + 'rule rm: deny "tool:call" on "rm*f"\n')
    got = effects(
        e,
        [
            dict(agent="a", action="tool:call", target="rm\n-rf"),
            dict(agent="a", action="tool:call", target="rm -rx"),
        ],
    )
    assert got == ["deny", "allow"]


def test_divergence_2_question_mark_is_one_character(tmp_path):
    e = load(tmp_path, OPEN + 'rule drop: deny "tool:call" on "drop_?"\nrule cls: deny "tool:call" on "x[!a]y"\n')
    got = effects(
        e,
        [
            dict(agent="a", action="tool:call", target="drop_é"),
            dict(agent="a", action="tool:call", target="drop_😀"),
            dict(agent="a", action="tool:call", target="drop_éé"),
            dict(agent="a", action="tool:call", target="xéy"),
            dict(agent="a", action="tool:call", target="xay"),
        ],
    )
    assert got == ["deny", "deny", "allow", "deny", "allow"]


def test_divergence_2_aegis_dialect(tmp_path):
    policy = (
        'version: "1"\ndefaults:\n  risk_level: low\n  approval: auto\n'
        'rules:\n  - name: no_drop\n    match:\n      type: "drop_?"\n    approval: block\n'
    )
    e = load(tmp_path, policy, "aegis.yaml")
    assert effects(e, [dict(agent="a", action="drop_é"), dict(agent="a", action="drop_ab")]) == [
        "deny",
        "allow",
    ]


def test_divergence_3_dotted_keys(tmp_path):
    e = load(tmp_path, OPEN + 'rule guard: deny "tool:call" when a.b == x\n')
    contexts = [
        {"a.b": "x"},
        {"a": {"b": "x"}},
        {"a.b": "y", "a": {"b": "x"}},  # two readings that differ: fail closed
        {"a": {"c": "x"}},
    ]
    got = effects(e, [dict(agent="a", action="tool:call", context=c) for c in contexts])
    assert got == ["deny", "deny", "deny", "allow"]


def test_divergence_4_each_limit_its_own_window(tmp_path):
    e = load(
        tmp_path,
        OPEN
        + 'agent "a" {\n  limit 5 requests per day\n  limit 1000 requests per second\n}\nrule all: allow "*"\n',
    )
    calls = [dict(agent="a", action="tool:call", at=START + dt.timedelta(seconds=2 * i)) for i in range(20)]
    assert effects(e, calls).count("allow") == 5


def test_divergence_4_agent_and_role_of_one_name(tmp_path):
    e = load(
        tmp_path,
        OPEN
        + 'agent "ops" {\n  roles [ops]\n  limit 3 requests per hour\n}\n'
        + 'role "ops" {\n  limit 3 requests per hour\n}\nrule all: allow "*"\n',
    )
    calls = [dict(agent="ops", action="tool:call", at=START + dt.timedelta(seconds=i)) for i in range(6)]
    assert effects(e, calls).count("allow") == 3


def test_divergence_5_exact_windows(tmp_path):
    e = load(tmp_path, OPEN + 'rule capped: allow "tool:call"\n  limit 30 per hour\n')
    for i in range(30):
        assert e.check("a", "tool:call", at=START + dt.timedelta(seconds=i)).allowed
    late = START + dt.timedelta(seconds=3610)
    assert e.check("a", "tool:call", at=late).allowed
    for i in range(10):
        assert e.check("a", "tool:call", at=late + dt.timedelta(milliseconds=i + 1)).allowed
    d = e.check("a", "tool:call", at=late + dt.timedelta(milliseconds=20))
    assert d.decision == "deny" and d.retry_after_s == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_divergence_6_non_finite_numbers_are_refused(tmp_path, bad):
    e = load(
        tmp_path,
        'policy "p" {\n  default deny\n}\nrule big: deny "tool:call" when amount > 100\nrule rest: allow "tool:call"\n',
    )
    with pytest.raises(ValueError, match="finite"):
        e.check("a", "tool:call", context={"amount": bad})


def test_divergence_7_lone_star_rules_load(tmp_path):
    e = load(tmp_path, 'policy "p" {\n  default deny\n}\nrule a: deny "*"\nrule b: allow "*"\n')
    assert e.check("x", "y").decision == "deny"
    out = tmp_path / "star.wbundle"
    writ.compile(tmp_path / "p.writ", out)
    with writ.load(out) as b:
        assert b.check("x", "y").decision == "deny"


def test_wrong_types_fail_closed(tmp_path):
    e = load(
        tmp_path,
        'policy "p" {\n  default deny\n}\nrule big: deny "tool:call" when amount > 100\n'
        'rule small: allow "tool:call" when amount <= 100\n',
    )
    got = effects(
        e,
        [dict(agent="a", action="tool:call", context={"amount": v}) for v in (50, "1000", [1000], True)],
    )
    assert got == ["allow", "deny", "deny", "deny"]
