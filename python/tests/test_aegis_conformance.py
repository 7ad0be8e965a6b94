"""writ reads Aegis policies as agent-aegis 1.0.0 does: a conformance test
against the real package (issue 20).

For the Aegis seed policies and a few hundred generated ones, every request
is decided by `aegis.Policy.from_dict(yaml.safe_load(text)).evaluate(...)`
(the clock frozen at the request's time) and by writ loading the same text,
and the two must agree on the approval, the risk and the rule. The mapping:

    Aegis approval  auto -> allow, approve -> approve, block -> deny
    Aegis risk      RiskLevel.X -> "x" (low, medium, high, critical)
    Aegis rule      matched_rule -> writ's rule; "<default>" -> no rule (None)
    Aegis request   Action(type, target, params, agent_id)
                    -> writ check(agent=agent_id or "*", action=type,
                                  target=target, context=params, at=now)

Differences are accepted only where writ deliberately fails closed, each
recognised here by what causes it and counted (docs/dialects.md, "Aegis",
lists them):

- refused: writ refuses to load a policy that uses a form it documents as
  refused (an unknown condition key, which makes an Aegis `block` rule
  never apply; `semantic`; `plan_rules`; an agent glob; weekday names or
  numbers outside 1..7; an unquoted `18:00`; a regular expression a glob
  cannot say; an order comparison with a list). The generator knows when it
  wrote one, and writ must refuse exactly then.
- aegis fails: Aegis raises while evaluating (`"a" > 5`, `5 in 5`); writ
  denies (with the rule's guard, `<rule>_error`, or the `block` rule
  itself).
- guard corner: writ denies where Aegis decides, for the two documented
  corners (`param_contains` of a scalar in a map parameter,
  `param_matches` on a value that is not a string).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

import pytest
import yaml

import writ

aegis = pytest.importorskip(
    "aegis",
    reason="agent-aegis 1.0.0 is not installed (pip install agent-aegis==1.0.0); .ci/run installs it",
)
from aegis.core import conditions as aegis_conditions  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEEDS = sorted(p for p in (ROOT / "examples" / "seeds").glob("aegis-*.yaml") if not p.name.endswith(".decisions.yaml"))
APPROVAL = {"auto": "allow", "approve": "approve", "block": "deny"}
POLICIES = 300
REQUESTS = 45


def test_the_package_is_1_0_0():
    from importlib.metadata import version

    assert version("agent-aegis") == "1.0.0"


# -- the clock ---------------------------------------------------------------


class _Frozen(dt.datetime):
    at = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.timezone.utc)

    @classmethod
    def now(cls, tz=None):  # noqa: D102 - conditions.py calls datetime.now(UTC)
        return cls.at


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(aegis_conditions, "datetime", _Frozen)


# -- deciding with both ------------------------------------------------------


def aegis_decide(policy, req):
    """("ok", approval, risk, rule) or ("raises", exception type name)."""
    _Frozen.at = req["at"]
    action = aegis.Action(
        type=req["type"], target=req["target"], params=req["params"], agent_id=req["agent"]
    )
    try:
        d = policy.evaluate(action)
    except Exception as e:  # noqa: BLE001 - any exception is Aegis failing
        return ("raises", type(e).__name__)
    rule = None if d.matched_rule == "<default>" else str(d.matched_rule)
    return ("ok", APPROVAL[d.approval.value], d.risk_level.name.lower(), rule)


def writ_decide(engine, req):
    d = engine.check(
        agent=req["agent"] or "*",
        action=req["type"],
        target=req["target"],
        context=req["params"],
        at=req["at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return ("ok", d.decision, d.risk, d.rule)


def codes(err):
    return sorted({m.group(1) for line in err.diagnostics for m in [re.search(r"\[(E\d{4})\]", line)] if m})


class Tally:
    def __init__(self):
        self.policies = 0
        self.requests = 0
        self.refused = {}
        self.aegis_fails = 0
        self.guard_corners = 0

    def line(self):
        refused = sum(self.refused.values())
        return (
            f"compared {self.requests:,} requests over {self.policies} policies; "
            f"{refused + self.aegis_fails + self.guard_corners} deliberate fail-closed differences "
            f"({refused} policies refused: {dict(sorted(self.refused.items()))}; "
            f"{self.aegis_fails} requests Aegis fails on, denied by writ; "
            f"{self.guard_corners} guard corners denied by writ)"
        )


def corner(rule_conditions, params):
    """A documented corner where writ's guard denies what Aegis decides."""
    for key, spec in (rule_conditions or {}).items():
        if not isinstance(spec, dict):
            continue
        for name, expected in spec.items():
            actual = params.get(name)
            if actual is None:
                continue
            if key == "param_contains" and isinstance(actual, dict) and not isinstance(expected, (list, dict)):
                return True
            if key == "param_matches" and not isinstance(actual, str):
                return True
    return False


def check_policy(tmp_path, text, requests, tally, refusal=None, name="p.yaml"):
    """Loads `text` in both and compares every request. `refusal` is the
    diagnostic code writ must refuse the policy with (a documented
    deliberate difference), or None."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    try:
        policy = aegis.Policy.from_dict(yaml.safe_load(text))
        aegis_error = None
    except Exception as e:  # noqa: BLE001
        policy, aegis_error = None, e
    try:
        engine = writ.load(path, dialect="aegis")
        writ_error = None
    except writ.PolicyError as e:
        engine, writ_error = None, e
    tally.policies += 1
    if aegis_error is not None:
        # Aegis cannot load it: writ must not load it either.
        assert writ_error is not None, f"Aegis fails to load ({aegis_error!r}) but writ loads:\n{text}"
        tally.refused["aegis cannot load"] = tally.refused.get("aegis cannot load", 0) + 1
        return
    if refusal is not None:
        assert writ_error is not None, f"writ should refuse ({refusal}):\n{text}"
        assert refusal in codes(writ_error), f"expected {refusal}, got {writ_error.diagnostics}\n{text}"
        tally.refused[refusal] = tally.refused.get(refusal, 0) + 1
        return
    assert writ_error is None, f"writ refuses a policy Aegis loads: {writ_error.diagnostics}\n{text}"
    data = yaml.safe_load(text) or {}
    rules_by_name = {}
    for i, r in enumerate(data.get("rules") or []):
        m = r.get("match", {})
        rname = r.get("name", f"rule_{i}") or f"{m.get('type', '*')}@{m.get('target', '*')}"
        rules_by_name[str(rname)] = r.get("conditions")
    for req in requests:
        tally.requests += 1
        a = aegis_decide(policy, req)
        w = writ_decide(engine, req)
        where = f"\nrequest: {req}\npolicy:\n{text}"
        if a[0] == "raises":
            assert w[1] == "deny", f"Aegis raises {a[1]}; writ: {w}{where}"
            tally.aegis_fails += 1
            continue
        if a != w and w[1] == "deny":
            guarded = rules_by_name.get(w[3].removesuffix("_error") if w[3] else None)
            assert corner(guarded, req["params"]), f"Aegis: {a}; writ: {w}{where}"
            tally.guard_corners += 1
            continue
        assert a == w, f"Aegis: {a}; writ: {w}{where}"


# -- the seed policies -------------------------------------------------------

SEED_TYPES = ["search", "search_docs", "retrieve_docs", "write_record", "write_table", "delete_record", "delete_table", "send_email", "reboot"]
SEED_TARGETS = ["web", "database", "kb", "smtp", "default"]
TIMES = [
    dt.datetime(2025, 1, d, h, m, s, tzinfo=dt.timezone.utc)
    for d in (13, 15, 18, 19)
    for (h, m, s) in [(0, 0, 0), (7, 59, 59), (8, 0, 0), (12, 0, 0), (17, 59, 59), (18, 0, 0), (23, 59, 59)]
]


def test_seed_policies(tmp_path, capsys):
    assert SEEDS, "examples/seeds/aegis-*.yaml"
    tally = Tally()
    requests = [
        {"type": t, "target": g, "params": {}, "agent": "", "at": at}
        for t in SEED_TYPES
        for g in SEED_TARGETS
        for at in TIMES[::3]
    ]
    for seed in SEEDS:
        check_policy(tmp_path, seed.read_text(encoding="utf-8"), requests, tally, name=seed.name)
    with capsys.disabled():
        print(f"\naegis seeds: {tally.line()}")
    assert tally.requests == len(SEEDS) * len(requests)


def test_seed_merge_takes_the_defaults_of_the_first_file(tmp_path):
    # Policy.from_yaml_files(prod, base): prod declares no defaults, so the
    # merged policy's are Aegis's own (block, medium), not base's.
    prod = ROOT / "examples" / "seeds" / "aegis-prod-overrides.yaml"
    base = ROOT / "examples" / "seeds" / "aegis-base-policy.yaml"
    merged = aegis.Policy.from_yaml_files(prod, base)
    engine = writ.load([prod, base], dialect="aegis")
    for t in SEED_TYPES:
        req = {"type": t, "target": "db", "params": {}, "agent": "", "at": TIMES[3]}
        assert aegis_decide(merged, req) == writ_decide(engine, req), t


# -- generated policies ------------------------------------------------------

TYPE_PATTERNS = ['"*"', "read", '"read*"', '"write_*"', '"w?ite*"', '"[rw]*"', '"[!r]*"', '"[^r]ead"', '"[a-"', '"d[e-a]l*"', '"[]]x"', '"x[!z-a]"', '"del*"', '"*e*"', "'a\\b'", '"{a,b}"']
TARGET_PATTERNS = ['"*"', "db", "web", '"d?"', '"[a-c]*"', '""']
TYPES = ["read", "read_x", "write_db", "wite", "wite_x", "delete", "Read", "ead", "^ead", "x", "]x", "[a-", "del", "w\nx", "a\\b", "{a,b}", "ab", "xé"]
TARGETS = ["db", "web", "", "d1", "dé", "a", "DB", "c9"]
AGENTS = ["", "bot-1", "bot-2", "*"]
AGENT_PATTERNS = ["bot-1", '"*"', '""']
PARAM_KEYS = ["n", "s", "flag", "a.b", "tags"]
VALUES = [None, True, False, 0, 1, 5, 5.0, -1, 2.5, 100, "", "a", "abc", "m", "z", "5", "True", "b\n", "ab", [], [1], [True], ["a", "b"], [0, "a"], {"x": 1}, {"a": "b"}, {"ab": 1}]
EQ_VALUES = ["0", "1", "5", "-1", "2.5", "true", "false", "yes", "off", "abc", '""', "null", "[1, a]", "{x: 1}", "[true]", '"5"', "0x1F", "017", "1_000", "1e3", "m"]
ORDER_VALUES = ["0", "1", "5", "-2.5", "true", '"m"', '""', "2.5", "100"]
CONTAINS_VALUES = ["a", "ab", "1", "true", "null", "[1]", "{x: 1}", '""', "b"]
REGEXES = ['""', '"^"', "abc", '"^a"', '"b$"', '"^a.c$"', '"[0-9]"', '"^[^x]"', '"a?b"', "'\\.'", "True", "5", '"^$"', '"b\\n"']
TIME_VALUES = ['"18:00"', '"8:00"', '"00:00"', '"23:59"', '" 12:30 "', '"12:30:45"', "08:00", '"7:5"']

# Forms writ refuses on purpose, with the code it must give.
REFUSED = [
    ("conditions", "      param_ne: { n: 1 }\n", "E0103"),
    ("conditions", "      semantic: destructive\n", "E0210"),
    ("conditions", "      weekdays: [mon, tue]\n", "E0206"),
    ("conditions", "      weekdays: [0, 3]\n", "E0206"),
    ("conditions", "      time_after: 18:00\n", "E0202"),
    ("conditions", '      param_matches: { s: "a.*b" }\n', "E0210"),
    ("conditions", "      param_gt: { n: [1] }\n", "E0207"),
    ("match", '      agent: "bot-*"\n', "E0210"),
    ("match", "      target: [db, web]\n", "E0104"),
    # Aegis itself fails to load these (fnmatch of an int): writ refuses too.
    ("match", "      type: 5\n", "E0104"),
    ("top", "plan_rules: { sequence_patterns: [] }\n", "E0210"),
]


def gen_condition(rng, key):
    k = rng.choice(PARAM_KEYS)
    if key in ("time_after", "time_before"):
        return f"      {key}: {rng.choice(TIME_VALUES)}\n"
    if key == "weekdays":
        days = rng.sample(range(1, 8), rng.randint(0, 4))
        if rng.random() < 0.2 and days:
            days[0] = f"{days[0]}.0"
        return f"      weekdays: [{', '.join(map(str, days))}]\n"
    if key == "param_eq":
        return f'      param_eq: {{ "{k}": {rng.choice(EQ_VALUES)} }}\n'
    if key == "param_contains":
        return f'      param_contains: {{ "{k}": {rng.choice(CONTAINS_VALUES)} }}\n'
    if key == "param_matches":
        return f'      param_matches: {{ "{k}": {rng.choice(REGEXES)} }}\n'
    # Two parameters in one mapping now and then: Aegis checks them in order.
    other = rng.choice([p for p in PARAM_KEYS if p != k])
    extra = f', "{other}": {rng.choice(ORDER_VALUES)}' if rng.random() < 0.2 else ""
    return f'      {key}: {{ "{k}": {rng.choice(ORDER_VALUES)}{extra} }}\n'


CONDITION_KEYS = ["time_after", "time_before", "weekdays", "param_eq", "param_gt", "param_lt", "param_gte", "param_lte", "param_contains", "param_matches"]


def gen_policy(rng, refused=None):
    """YAML text of a policy; `refused` is one entry of REFUSED to put in."""
    where, snippet = (refused[0], refused[1]) if refused else (None, None)
    out = []
    if rng.random() < 0.7:
        out.append(rng.choice(['version: "1"\n', "version: 1\n", "version: 2\n"]))
    if rng.random() < 0.2:
        out.append("scope: agent\nscope_id: x\n")
    d = rng.random()
    if d < 0.15:
        out.append("defaults:\n")
    elif d < 0.85:
        out.append("defaults:\n")
        if rng.random() < 0.8:
            out.append(f"  approval: {rng.choice(['auto', 'approve', 'block'])}\n")
        if rng.random() < 0.8:
            out.append(f"  risk_level: {rng.choice(['low', 'medium', 'HIGH', 'Critical'])}\n")
    if where == "top":
        out.append(snippet)
    out.append("rules:\n")
    n_rules = rng.randint(1, 6)
    refused_rule = rng.randrange(n_rules)
    for i in range(n_rules):
        lines = []
        nm = rng.random()
        if nm < 0.5:
            lines.append(f"    name: r{i}\n")
        elif nm < 0.6:
            lines.append('    name: ""\n')
        elif nm < 0.65:
            lines.append("    name: null\n")
        elif nm < 0.7:
            lines.append(f"    name: {100 + i}\n")
        match_lines = []
        if rng.random() < 0.85:
            match_lines.append(f"      type: {rng.choice(TYPE_PATTERNS)}\n")
        if rng.random() < 0.5:
            match_lines.append(f"      target: {rng.choice(TARGET_PATTERNS)}\n")
        if rng.random() < 0.2:
            match_lines.append(f"      agent: {rng.choice(AGENT_PATTERNS)}\n")
        if where == "match" and i == refused_rule:
            key = snippet.split(":")[0]
            match_lines = [m for m in match_lines if m.split(":")[0] != key] + [snippet]
        if match_lines:
            lines.append("    match:\n" + "".join(match_lines))
        if rng.random() < 0.8:
            lines.append(f"    approval: {rng.choice(['auto', 'approve', 'block'])}\n")
        if rng.random() < 0.7:
            lines.append(f"    risk_level: {rng.choice(['low', 'medium', 'high', 'critical', 'Low'])}\n")
        conds = []
        if rng.random() < 0.75:
            conds = [gen_condition(rng, key) for key in rng.sample(CONDITION_KEYS, rng.randint(1, 3))]
        if where == "conditions" and i == refused_rule:
            key = snippet.split(":")[0]
            conds = [c for c in conds if c.split(":")[0] != key]
            conds.insert(rng.randint(0, len(conds)), snippet)
        if conds:
            lines.append("    conditions:\n" + "".join(conds))
        if not lines:
            lines.append("    description: everything\n")
        first = lines[0]
        out.append("  - " + first[4:] + "".join(lines[1:]))
    return "".join(out)


def gen_request(rng, at_pool):
    params = {}
    for k in rng.sample(PARAM_KEYS, rng.randint(0, 3)):
        params[k] = rng.choice(VALUES)
    return {
        "type": rng.choice(TYPES),
        "target": rng.choice(TARGETS),
        "params": params,
        "agent": rng.choice(AGENTS),
        "at": rng.choice(at_pool),
    }


def test_generated_policies(tmp_path, capsys):
    rng = random.Random(20)
    at_pool = TIMES + [
        dt.datetime(2025, 1, 13 + d, h, m, s, tzinfo=dt.timezone.utc)
        for d in range(7)
        for (h, m, s) in [(8, 0, 0), (12, 30, 0), (12, 30, 44), (18, 0, 1), (23, 59, 0), (0, 0, 30), (7, 4, 59), (7, 5, 0)]
    ]
    tally = Tally()
    for n in range(POLICIES):
        refused = rng.choice(REFUSED) if rng.random() < 0.12 else None
        text = gen_policy(rng, refused)
        refusal = refused[2] if refused else None
        requests = [gen_request(rng, at_pool) for _ in range(REQUESTS)]
        check_policy(tmp_path, text, requests, tally, refusal=refusal, name=f"g{n}.yaml")
    with capsys.disabled():
        print(f"\naegis generated: {tally.line()}")
    # Every kind of difference was exercised, and most policies compared.
    assert tally.requests >= POLICIES * REQUESTS * 3 // 4
    assert tally.aegis_fails > 0 and tally.guard_corners > 0
    assert set(tally.refused) >= {c for _, _, c in REFUSED} | {"aegis cannot load"}
