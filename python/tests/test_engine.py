"""writ.load / check / enforce / govern against the repository's examples."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import writ
from writ_testutil import EXAMPLES, NOON, SUPPORT

REFUND = dict(agent="billing-agent", action="tool:call", target="refund")


@pytest.fixture
def engine():
    with writ.load(SUPPORT) as e:
        yield e


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "support.wbundle"
    writ.compile(SUPPORT, out)
    return out


# -- loading ---------------------------------------------------------------


def test_public_api_names():
    for name in [
        "load",
        "compile",
        "Engine",
        "Decision",
        "WritError",
        "PolicyError",
        "PolicyDenied",
        "ApprovalRequired",
        "__version__",
    ]:
        assert hasattr(writ, name), name
    assert issubclass(writ.PolicyError, writ.WritError)
    assert issubclass(writ.PolicyDenied, writ.WritError)
    assert issubclass(writ.ApprovalRequired, writ.WritError)
    assert issubclass(writ.WritError, Exception)
    assert isinstance(writ.__version__, str) and writ.__version__


def test_load_writ_source(engine):
    assert isinstance(engine, writ.Engine)
    assert engine.rules == 9
    assert len(engine.revision) == 64 and int(engine.revision, 16) >= 0
    assert engine.audit_path is None
    assert engine.last_reload_error is None
    assert "support.writ" in repr(engine)


def test_load_accepts_pathlike_str_and_list():
    a = writ.load(str(SUPPORT))
    b = writ.load(SUPPORT)
    c = writ.load([SUPPORT])
    assert a.revision == b.revision == c.revision


def test_compiled_bundle_decides_like_its_source(bundle, engine):
    data = bundle.read_bytes()
    assert data[:8] == b"WRITBNDL"
    assert writ.compile(SUPPORT) == data
    b = writ.load(bundle)
    assert b.revision == engine.revision
    assert b.rules == engine.rules
    assert b.warnings == []
    for req in [
        dict(REFUND, context={"amount": 79.99, "currency": "USD"}, at=NOON),
        dict(REFUND, context={"amount": 500, "currency": "USD"}, at=NOON),
        dict(agent="billing-agent", action="tool:call", target="delete_customer"),
        dict(agent="triage-agent", action="model:use", target="gpt-4.1"),
    ]:
        assert b.check(**req).to_dict() == engine.check(**req).to_dict()


def test_bundle_with_other_files_is_refused(bundle):
    with pytest.raises(writ.PolicyError, match="load it alone"):
        writ.load([bundle, SUPPORT])


def test_corrupt_bundle_is_refused(tmp_path, bundle):
    data = bytearray(bundle.read_bytes())
    data[40] ^= 0xFF
    bad = tmp_path / "bad.wbundle"
    bad.write_bytes(bytes(data))
    with pytest.raises(writ.PolicyError, match="checksum"):
        writ.load(bad)


def test_public_key_needs_a_signed_bundle(bundle):
    with pytest.raises(writ.PolicyError, match="not signed"):
        writ.load(bundle, public_key=b"\x01" * 32)
    with pytest.raises(writ.PolicyError, match="policy source"):
        writ.load(SUPPORT, public_key="ab" * 32)
    with pytest.raises(ValueError):
        writ.load(bundle, public_key=b"short")


def test_a_tier_counts_for_agents_the_policy_does_not_declare():
    e = writ.load(SUPPORT)
    # `delete_needs_human` asks for tiers trusted and privileged.
    ghost = e.check("ghost", "tool:call", "delete_customer")
    assert ghost.decision == "deny" and ghost.defaulted
    trusted = e.check("ghost", "tool:call", "delete_customer", tier="trusted")
    assert (trusted.decision, trusted.rule) == ("approve", "delete_needs_human")
    assert e.check("ghost", "tool:call", "delete_customer", tier="verified").decision == "deny"
    # A declared tier wins: billing-agent is trusted whatever it says.
    billing = e.check("billing-agent", "tool:call", "delete_customer", tier="untrusted")
    assert (billing.decision, billing.rule) == ("approve", "delete_needs_human")
    with pytest.raises(ValueError, match="is not a tier"):
        e.check("ghost", "tool:call", "delete_customer", tier="root")
    with pytest.raises(TypeError):
        e.check("ghost", "tool:call", "delete_customer", tier=3)


def test_yaml_seed_dialects_detected_and_forced():
    mg = writ.load(EXAMPLES / "seeds" / "meshguard-openai-support.yaml")
    d = mg.check("support-bot", "write:refund", context={"amount": 79.99}, tags=["openai"])
    assert (d.decision, d.rule) == ("allow", "allow_write_refund")
    d = mg.check("support-bot", "write:refund", context={"amount": 500}, tags=["openai"])
    assert (d.decision, d.rule, d.reason) == (
        "deny",
        "deny_write_refund",
        "Refunds over $100 require manager approval",
    )
    forced = writ.load(EXAMPLES / "seeds" / "sekuire.yml", dialect="sekuire")
    assert forced.check("research-assistant", "model:use", "gpt-4o-mini").rule == "model_allowed"
    with pytest.raises(writ.PolicyError, match="Aegis"):
        writ.load(EXAMPLES / "seeds" / "sekuire.yml", dialect="aegis")
    with pytest.raises(ValueError, match="unknown dialect"):
        writ.load(SUPPORT, dialect="cedar")


def test_writ_yaml_schema_and_multiple_files_merge():
    y = writ.load(EXAMPLES / "support.yaml", dialect="yaml")
    assert y.check(**REFUND, context={"amount": 10, "currency": "USD"}, at=NOON).allowed
    merged = writ.load(
        [EXAMPLES / "seeds" / "aegis-prod-overrides.yaml", EXAMPLES / "seeds" / "aegis-base-policy.yaml"]
    )
    assert merged.rules > 0


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        writ.load(tmp_path / "nope.writ")
    with pytest.raises(FileNotFoundError):
        writ.compile(tmp_path / "nope.writ")


def test_broken_policy_raises_policy_error_with_locations(tmp_path):
    bad = tmp_path / "bad.writ"
    bad.write_text(
        'policy "x" {\n  default deny\n}\n\n'
        'rule a: allow "tool:call" on search\n  limit 3 per fortnight\n\n'
        'rule b: alow "x"\n'
    )
    with pytest.raises(writ.PolicyError) as err:
        writ.load(bad)
    e = err.value
    assert isinstance(e, writ.WritError)
    assert len(e.diagnostics) == 2
    assert e.diagnostics[0].startswith(f"{bad}:6:15: error[E0203]:")
    assert e.diagnostics[1].startswith(f"{bad}:8:9: error[E0401]:")
    assert "2 errors" in str(e)
    for line in e.diagnostics:
        assert line in str(e)
        assert "\x1b[" not in line  # no colors
    with pytest.raises(writ.PolicyError) as err2:
        writ.compile(bad)
    assert err2.value.diagnostics == e.diagnostics


def test_bad_path_types():
    with pytest.raises(TypeError):
        writ.load(42)
    with pytest.raises(ValueError):
        writ.load([])


# -- deciding ----------------------------------------------------------------


def test_known_decisions(engine):
    d = engine.check("triage-agent", "tool:call", "lookup_customer")
    assert d.allowed and d.decision == "allow"
    assert (d.rule, d.policy, d.risk, d.reason) == (
        "lookups",
        "support",
        "low",
        "Customer lookups are read-only",
    )
    d = engine.check(**REFUND, context={"amount": 500, "currency": "USD"}, at=NOON)
    assert (d.allowed, d.decision, d.rule, d.risk) == (False, "deny", "refund_large", "high")
    assert d.reason == "Refunds over $100 require manager approval"
    d = engine.check(**REFUND, context={"amount": 10, "currency": "USD"}, at="2025-01-15T04:00:00Z")
    assert (d.decision, d.rule) == ("deny", "night_refund_block")
    d = engine.check("billing-agent", "tool:call", "delete_customer")
    assert (d.decision, d.rule, d.risk) == ("approve", "delete_needs_human", "critical")
    d = engine.check("billing-agent", "tool:call", "shell")
    assert d.rule is None
    assert d.reason == "tool `shell` is not in tools.allow of agent `billing-agent`"
    d = engine.check(
        "tier1-bot",
        "agent:delegate",
        "manager",
        {"labels": ["refund", "escalate"], "customer": {"email": "ann@example.com"}},
    )
    assert (d.decision, d.rule, d.reason) == ("approve", "escalate", "Escalations from tier1-bot need a human")
    d = engine.check("triage-agent", "tool:call", "refund", {"amount": 5, "currency": "USD"}, token="tok_billing_42", at=NOON)
    assert (d.decision, d.rule) == ("allow", "refund_small")


def test_positional_and_keyword_arguments(engine):
    ctx = {"amount": 20, "currency": "EUR"}
    a = engine.check("billing-agent", "tool:call", "refund", ctx, None, 0, "t-1", NOON)
    b = engine.check(agent="billing-agent", action="tool:call", target="refund", context=ctx, trace_id="t-1", at=NOON)
    assert a.to_dict() == b.to_dict()
    assert a.trace_id == "t-1"


def test_at_accepts_aware_datetimes(engine):
    night = dt.datetime(2025, 1, 15, 4, 0, tzinfo=dt.timezone.utc)
    d = engine.check(**REFUND, context={"amount": 10, "currency": "USD"}, at=night)
    assert d.rule == "night_refund_block"
    ny_day = dt.datetime(2025, 1, 15, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    d = engine.check(**REFUND, context={"amount": 10, "currency": "USD"}, at=ny_day)
    assert (d.decision, d.rule) == ("allow", "refund_small")


def test_decision_fields_repr_and_dict(engine):
    d = engine.check(**REFUND, context={"amount": 500, "currency": "USD"}, at=NOON, trace_id="run-7")
    assert (d.agent, d.action, d.target, d.trace_id, d.id, d.retry_after_s) == (
        "billing-agent",
        "tool:call",
        "refund",
        "run-7",
        None,
        None,
    )
    r = repr(d)
    assert r.startswith("Decision('deny'") and "refund_large" in r and "risk='high'" in r
    assert d.to_dict() == {
        "decision": "deny",
        "allowed": False,
        "rule": "refund_large",
        "policy": "support",
        "reason": "Refunds over $100 require manager approval",
        "risk": "high",
        "retry_after_s": None,
        "defaulted": False,
        "id": None,
        "trace_id": "run-7",
        "agent": "billing-agent",
        "action": "tool:call",
        "target": "refund",
    }
    with pytest.raises(AttributeError):
        d.decision = "allow"


def test_chain_is_enforced(engine):
    ctx = {"ticket": {"priority": "urgent"}, "amount": 10, "currency": "USD"}
    ok = engine.check("billing-agent", "tool:call", "lookup_x", ctx, ["triage-agent", "billing-agent"], at=NOON)
    assert ok.allowed
    low = dict(ctx, ticket={"priority": "low"})
    no = engine.check("billing-agent", "tool:call", "lookup_x", low, ["triage-agent", "billing-agent"], at=NOON)
    assert not no.allowed
    assert "delegation" in no.reason


def test_token_budget(engine):
    a = engine.check("billing-agent", "model:use", "gpt-4.1", tokens=30000, at="2025-01-15T13:00:00Z")
    b = engine.check("billing-agent", "model:use", "gpt-4.1", tokens=30000, at="2025-01-15T13:00:00Z")
    assert a.allowed and not b.allowed
    assert b.retry_after_s == 3600


# -- malformed input raises, never allows -------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(context={"amount": {1, 2}}), TypeError, r"`amount` has type set"),
        (dict(context={"a": {"b": [1, object()]}}), TypeError, r"`a\.b\[1\]` has type object"),
        (dict(context={"a": b"bytes"}), TypeError, "type bytes"),
        (dict(context={1: "x"}), TypeError, "keys must be str"),
        (dict(context={"a": {2: "x"}}), TypeError, "`a` has a key of type int"),
        (dict(context=["amount", 1]), TypeError, "context must be a dict"),
        (dict(context={"x": float("nan")}), ValueError, "finite"),
        (dict(context={"x": 10**400}), ValueError, "too large"),
        (dict(at="yesterday"), ValueError, "RFC 3339"),
        (dict(at="2025-01-15T12:00:00"), ValueError, "RFC 3339"),
        (dict(at=dt.datetime(2025, 1, 15, 12)), ValueError, "naive"),
        (dict(at=dt.date(2025, 1, 15)), TypeError, "aware datetime"),
        (dict(at=1736942400), TypeError, "aware datetime"),
        (dict(chain="triage-agent"), TypeError, "chain must be a list"),
        (dict(chain=["a", 3]), TypeError, r"chain\[1\] must be str"),
        (dict(tokens=-1), ValueError, "non-negative"),
        (dict(tokens=2**64), ValueError, "non-negative"),
        (dict(tokens="5"), TypeError, "tokens must be an int"),
        (dict(tokens=1.5), TypeError, "tokens must be an int"),
        (dict(chain=["triage-agent", "other"]), ValueError, "chain ends with `other`"),
        (dict(chain=["", "billing-agent"]), ValueError, "empty agent"),
        (dict(target=5), TypeError, "PyString|str"),
        (dict(trace_id=5), TypeError, "PyString|str"),
    ],
)
def test_malformed_requests_raise(engine, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        engine.check("billing-agent", "tool:call", **kwargs)


def test_bad_agent_or_action_types(engine):
    with pytest.raises(TypeError):
        engine.check(None, "tool:call")
    with pytest.raises(TypeError):
        engine.check("a", 1)
    with pytest.raises(TypeError):
        engine.check("a")
    with pytest.raises(ValueError, match="`agent` must not be empty"):
        engine.check(" ", "tool:call")
    with pytest.raises(ValueError, match="`action` must not be empty"):
        engine.check("a", "")


def test_self_referencing_context_raises(engine):
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match="deeper than 64"):
        engine.check("a", "b", context=loop)
    lst: list = []
    lst.append(lst)
    with pytest.raises(ValueError, match="deeper than 64"):
        engine.check("a", "b", context={"l": lst})


def test_json_like_context_values_are_accepted(engine):
    ctx = {"n": None, "b": True, "i": 3, "f": 2.5, "s": "x", "l": [1, "a", None, [2]], "t": (1, 2), "m": {"k": {"z": []}}}
    assert engine.check("triage-agent", "tool:call", "lookup_x", ctx).allowed


# -- enforce / govern ----------------------------------------------------------


def test_enforce_returns_the_allow(engine):
    d = engine.enforce("triage-agent", "tool:call", "lookup_customer")
    assert d.allowed and d.rule == "lookups"


def test_enforce_raises_policy_denied(engine):
    with pytest.raises(writ.PolicyDenied) as err:
        engine.enforce(**REFUND, context={"amount": 500, "currency": "USD"}, at=NOON)
    e = err.value
    assert isinstance(e, writ.WritError)
    assert e.decision.decision == "deny" and e.decision.rule == "refund_large"
    assert "refund_large" in str(e) and "Refunds over $100 require manager approval" in str(e)


def test_enforce_raises_approval_required(engine):
    with pytest.raises(writ.ApprovalRequired) as err:
        engine.enforce("billing-agent", "tool:call", "delete_customer")
    e = err.value
    assert not isinstance(e, writ.PolicyDenied)
    assert e.decision.decision == "approve"
    assert "delete_needs_human" in str(e)


def test_govern_runs_the_block_only_when_allowed(engine):
    ran = []
    with engine.govern("triage-agent", "tool:call", "lookup_customer") as d:
        ran.append(d.rule)
    assert ran == ["lookups"]
    with pytest.raises(writ.PolicyDenied):
        with engine.govern("billing-agent", "tool:call", "shell"):
            ran.append("shell")
    with pytest.raises(writ.ApprovalRequired):
        with engine.govern("billing-agent", "tool:call", "delete_customer"):
            ran.append("delete")
    assert ran == ["lookups"]


def test_enforce_passes_malformed_input_errors_through(engine):
    with pytest.raises(TypeError):
        engine.enforce("a", "b", context={"x": {1}})


# -- lifecycle -----------------------------------------------------------------


def test_closed_engine_refuses_to_decide():
    e = writ.load(SUPPORT)
    with e:
        assert e.check("triage-agent", "tool:call", "lookup_x").allowed
    assert e.closed
    with pytest.raises(writ.WritError, match="closed"):
        e.check("triage-agent", "tool:call", "lookup_x")
    e.close()  # twice is fine
    e.flush()


def test_engine_can_be_subclassed():
    class Mine(writ.Engine):
        def allowed(self, *a, **kw):
            return self.check(*a, **kw).allowed

    m = Mine(SUPPORT)
    assert m.allowed("triage-agent", "tool:call", "lookup_x")
    assert isinstance(writ.load(SUPPORT), writ.Engine)


def test_limit_allows_exactly_three(tmp_path):
    from writ_testutil import LIMIT_POLICY

    p = tmp_path / "limits.writ"
    p.write_text(LIMIT_POLICY)
    e = writ.load(p)
    results = [e.check("bot", "tool:call", "search") for _ in range(10)]
    assert [d.allowed for d in results] == [True] * 3 + [False] * 7
    assert results[3].rule == "search" and results[3].retry_after_s and results[3].retry_after_s > 3000
    assert "rate limit" in results[3].reason
    # Other rules and agents are not affected.
    assert e.check("bot", "tool:call", "read").allowed
    # A later window has room again.
    assert e.check("bot", "tool:call", "search", at="2099-01-01T00:00:00Z").allowed


def test_context_reuse_between_calls_of_different_shapes(engine):
    """Each thread reuses one request between calls: a call must never see
    what an earlier call left behind."""
    ok = {"amount": 10, "currency": "USD"}
    seq = [
        ({"amount": 10, "currency": "USD"}, "allow"),
        ({"amount": 10}, "deny"),  # a key fewer
        ({"amount": 10, "currency": "GBP"}, "deny"),  # same keys, another value
        ({"amount": 10, "currency": "USD", "extra": [1, {"a": None}]}, "allow"),
        ({"currency": "USD", "amount": 500}, "deny"),  # another order
        (None, "deny"),
        ({}, "deny"),
        ({"amount": "10", "currency": "USD"}, "deny"),  # a string does not compare as a number
        (ok, "allow"),
        (ok, "allow"),
    ]
    for i, (ctx, want) in enumerate(seq):
        # An hour apart: the rule's limit (3 per hour) never fills.
        at = f"2025-01-15T{11 + i:02d}:30:00Z"
        d = engine.check(**REFUND, context=ctx, at=at, trace_id=None)
        assert d.decision == want, (ctx, d)
    # Lists shrink and grow; the target comes and goes.
    esc = {"labels": ["refund", "escalate"], "customer": {"email": "ann@example.com"}}
    assert engine.check("tier1-bot", "agent:delegate", "manager", esc).decision == "approve"
    esc2 = {"labels": ["refund"], "customer": {"email": "ann@example.com"}}
    assert engine.check("tier1-bot", "agent:delegate", "manager", esc2).decision == "deny"
    assert engine.check("tier1-bot", "agent:delegate", "manager", esc).decision == "approve"
    assert engine.check("tier1-bot", "agent:delegate").target is None


def test_a_failed_conversion_leaves_no_trace(engine):
    with pytest.raises(TypeError):
        engine.check(**REFUND, context={"amount": 10, "currency": {1}}, at=NOON)
    d = engine.check(**REFUND, context={"amount": 10, "currency": "USD"}, at=NOON)
    assert d.decision == "allow"
    with pytest.raises(TypeError):
        engine.check("billing-agent", 5)
    assert engine.check("triage-agent", "tool:call", "lookup_x").allowed


def test_big_and_float_numbers_compare_as_numbers(engine):
    assert engine.check(**REFUND, context={"amount": 99.5, "currency": "USD"}, at=NOON).allowed
    assert not engine.check(**REFUND, context={"amount": 10**30, "currency": "USD"}, at=NOON).allowed
    assert engine.check(**REFUND, context={"amount": True, "currency": "USD"}, at=NOON).rule != "refund_small"


def test_context_keys_remembered_between_calls_never_stale(tmp_path):
    """Each thread remembers the last context's key objects to skip reading
    them again: a changed value, key, order or set of keys must still be
    seen, and a bad value still refused."""
    src = tmp_path / "ctx.writ"
    src.write_text(
        'policy "ctx" {\n  default deny\n}\n\n'
        'rule small: allow "pay" on "refund"\n  when amount < 100 and currency == "USD"\n\n'
        'rule vip: allow "pay" on "refund"\n  when tier == "vip"\n'
    )
    eng = writ.load(str(src))

    def check(ctx):
        return eng.check("a", "pay", "refund", context=ctx).decision

    ctx = {"amount": 5, "currency": "USD"}
    assert check(ctx) == "allow"
    assert check(ctx) == "allow"  # the remembered keys, same values
    ctx["amount"] = 500  # same dict, same key objects, a new value
    assert check(ctx) == "deny"
    ctx["amount"] = 7
    assert check(ctx) == "allow"
    assert check({"currency": "USD", "amount": 8}) == "allow"  # another order
    assert check({"currency": "EUR", "amount": 8}) == "deny"
    # Equal text in other objects (not the remembered ones).
    assert check({"".join(["amo", "unt"]): 9, "".join(["curr", "ency"]): "USD"}) == "allow"
    assert check({"amount": 9, "tier": "vip"}) == "allow"  # a key replaced
    assert check({"amount": 900, "tier": "basic"}) == "deny"
    assert check({"amount": 9}) == "deny"  # fewer keys
    assert check({"amount": 9, "currency": "USD", "tier": "x"}) == "allow"  # more
    assert check({}) == "deny"
    assert check({"amount": 3, "currency": "USD"}) == "allow"
    with pytest.raises(TypeError, match="amount"):
        check({"amount": object(), "currency": "USD"})
    with pytest.raises(ValueError, match="amount"):
        check({"amount": float("nan"), "currency": "USD"})
    assert check({"amount": 3, "currency": "USD"}) == "allow"


def test_nested_context_keys_remembered_never_stale(tmp_path):
    """Nested dicts remember their keys too: a nested dict replaced by
    another value and back, or by a dict of other keys of the same count,
    must be read afresh."""
    src = tmp_path / "nested.writ"
    src.write_text(
        'policy "nested" {\n  default deny\n}\n\n'
        'rule urgent: allow "pay" on "refund"\n  when ticket.priority == "urgent"\n\n'
        'rule owner: allow "pay" on "refund"\n  when ticket.owner == "ann"\n\n'
        'rule deep: allow "pay" on "refund"\n  when a.b.c == 1\n'
    )
    eng = writ.load(str(src))

    def check(ctx):
        d = eng.check("x", "pay", "refund", context=ctx)
        return d.rule if d.allowed else None

    t = {"ticket": {"priority": "urgent", "owner": "bob"}}
    for _ in range(3):  # the first calls fill the caches level by level
        assert check(t) == "urgent"
    t["ticket"]["priority"] = "low"
    assert check(t) is None
    assert check({"ticket": "urgent"}) is None  # the nested dict replaced by a str
    assert check({"ticket": {"p": 1, "q": 2}}) is None  # other keys, same count
    assert check({"ticket": {"priority": "low", "owner": "ann"}}) == "owner"
    assert check({"ticket": {"owner": "bob", "priority": "urgent"}}) == "urgent"  # another order
    assert check({"ticket": {"priority": "urgent"}}) == "urgent"  # fewer keys
    assert check({"ticket": {"priority": "low", "owner": "ann", "x": [1]}}) == "owner"

    class Sub(dict):
        pass

    assert check({"ticket": Sub(owner="ann", priority="low")}) == "owner"  # a subclass
    assert check({"ticket": {"priority": "low", "owner": "ann"}}) == "owner"
    deep = {"a": {"b": {"c": 1}}}
    for _ in range(4):
        assert check(deep) == "deep"
    deep["a"]["b"]["c"] = 2
    assert check(deep) is None
    deep["a"]["b"] = {"c": 1.0}
    assert check(deep) == "deep"
    with pytest.raises(TypeError, match="a.b.c"):
        check({"a": {"b": {"c": {1}}}})
    assert check(deep) == "deep"


def test_subclasses_of_json_types_are_read_by_value(engine):
    class S(str):
        pass

    class I(int):
        pass

    class F(float):
        pass

    class L(list):
        pass

    ok = {"amount": I(10), "currency": S("USD")}
    assert engine.check(**REFUND, context=ok, at=NOON).decision == "allow"
    assert engine.check(**REFUND, context={"amount": F(10.5), "currency": "USD"}, at=NOON).allowed
    assert not engine.check(**REFUND, context={"amount": I(500), "currency": S("USD")}, at=NOON).allowed
    assert engine.check(**REFUND, context={"amount": 10, "currency": "USD", "l": L([S("a")])}, at=NOON).allowed


def _fast_path_engine(tmp_path):
    src = tmp_path / "fast.writ"
    src.write_text(
        'policy "fast" {\n  default deny\n}\n\n'
        'rule vip: allow "pay" on "x"\n  when labels contains vip and amount < 100\n\n'
        'rule deep: allow "pay" on "x"\n  when a.b.c == 1 and flag == true\n\n'
        'rule named: allow "pay" on "x"\n  when who == "ann" and note exists\n'
    )
    return writ.load(str(src))


def test_the_same_context_mutated_between_calls_is_read_afresh(tmp_path):
    """The same dict (same key objects) checked again and again while its
    values change type and content: each answer is the one a fresh copy of
    the dict gets (which takes the general path)."""
    import copy

    eng = _fast_path_engine(tmp_path)

    def both(ctx):
        fresh = eng.check("a", "pay", "x", context=copy.deepcopy(ctx)).rule
        again = eng.check("a", "pay", "x", context=ctx).rule
        assert again == fresh, ctx
        return again

    class Sub(int):
        pass

    ctx = {"labels": ["vip", "x"], "amount": 5, "a": {"b": {"c": 1}}, "flag": False, "who": "ann", "note": None}
    assert both(ctx) == both(ctx) == "vip"
    ctx["labels"] = []
    assert both(ctx) is None
    steps = [
        ("labels", ("vip",), "vip"),  # a tuple
        ("amount", 500, None),
        ("amount", 99.5, "vip"),
        ("amount", 2**40, None),  # beyond 32 bits
        ("amount", -(2**40), "vip"),
        ("amount", 10**30, None),  # too big for an i64: read as a float
        ("amount", Sub(7), "vip"),  # a subclass takes the general path
        ("labels", ["a", ["vip"], {"k": "vip"}], None),  # a nested list, a dict in a list
        ("labels", "a vip string", "vip"),  # a substring
        ("labels", [], None),
        ("flag", True, "deep"),
        ("a", {"b": {"c": 2}}, None),
        ("a", {"b": {"c": 1.0}}, "deep"),
        ("a", {"b": "c"}, None),
        ("note", "n", "named"),
        ("who", "bob", None),
        ("a", {"b": {"c": 1}}, "deep"),
        ("a", {}, None),  # an empty dict
        ("a", {"b": {}}, None),
        ("a", {"b": {"c": 1}}, "deep"),
        ("a", {"b": {"c": 1, **{f"k{i}": i for i in range(20)}}}, "deep"),  # too many keys to remember
        ("a", {"b": {"c": 2, **{f"k{i}": i for i in range(20)}}}, None),
        ("a", {"b": {"c": 1}}, "deep"),
    ]
    for key, value, want in steps:
        ctx[key] = value
        assert both(ctx) == want, (key, value)
    # A nested dict whose keys change at every call, beside a steady one.
    for i in range(8):
        ctx["a"] = {"b": {"c": i % 2, f"id{i}": i}}
        assert both(ctx) == ("deep" if i % 2 else None), i


def test_bad_values_in_a_remembered_context_still_raise(tmp_path):
    eng = _fast_path_engine(tmp_path)
    ctx = {"labels": ["vip"], "amount": 5, "who": "ann"}
    for _ in range(3):
        assert eng.check("a", "pay", "x", context=ctx).rule == "vip"
    ctx["who"] = "\ud800"  # a lone surrogate has no UTF-8 form
    with pytest.raises(UnicodeEncodeError):
        eng.check("a", "pay", "x", context=ctx)
    ctx["who"] = "ann"
    ctx["labels"] = ["vip", float("inf")]
    with pytest.raises(ValueError, match=r"labels\[1\]"):
        eng.check("a", "pay", "x", context=ctx)
    ctx["labels"] = ["vip", {"deep": {1, 2}}]
    with pytest.raises(TypeError, match=r"labels\[1\].deep"):
        eng.check("a", "pay", "x", context=ctx)
    ctx["labels"] = ["vip"]
    assert eng.check("a", "pay", "x", context=ctx).rule == "vip"


def test_python_code_run_while_reading_a_context_cannot_break_it(tmp_path):
    """Reading a value's type name (to refuse it) can run Python code — a
    metaclass property — which here empties the very dict being read. The
    check must neither crash nor read freed memory: it decides on what the
    dict then holds, or raises."""
    eng = _fast_path_engine(tmp_path)
    ctx: dict = {}

    class Meta(type):
        @property
        def __name__(cls):  # noqa: N802 - the attribute being faked
            ctx.clear()
            ctx["amount"] = 1
            return "Evil"

    class Evil(metaclass=Meta):
        pass

    base = {"labels": ["vip"], "amount": 5, "who": "ann"}
    for _ in range(3):
        ctx.clear()
        ctx.update(base)
        assert eng.check("a", "pay", "x", context=ctx).rule == "vip"
    for _ in range(3):
        ctx.clear()
        ctx.update(base)
        ctx["who"] = Evil()
        try:
            d = eng.check("a", "pay", "x", context=ctx)
        except TypeError:
            pass
        else:
            assert d.decision == "deny"
    ctx.clear()
    ctx.update(base)
    assert eng.check("a", "pay", "x", context=ctx).rule == "vip"
