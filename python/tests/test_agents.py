"""writ.agents against the real OpenAI Agents SDK, offline: real runner
loops driven by scripted models (no network, no API key).

The scenario of the seeds: a triage agent hands off to a billing agent; a
customer lookup is allowed, a refund of 79.99 runs, a refund of 500 is
refused and the model sees why, a delete needs approval and runs only after
``state.approve``, a handoff to an engineering agent is never offered, and
a retired model is refused before it is called. The same policy in writ's
language and in the MeshGuard and Aegis dialects gives the same outcomes,
and the audit log holds every decision in order, with the chain.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OPENAI_API_KEY", "sk-offline-test")

import agents  # noqa: E402
from agents import Agent, Runner  # noqa: E402

import writ  # noqa: E402
from writ.agents import (  # noqa: E402
    SUPPORTS_APPROVAL,
    WritHooks,
    current_chain,
    govern_agent,
    governed_handoff,
    governed_tool,
    model_name,
    writ_output_guardrail,
)

from scripted import call, calls, model, offered, say, tool_outputs  # noqa: E402

agents.set_tracing_disabled(True)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"
POLICIES = ["support.writ", "support.meshguard.yaml", "support.aegis.yaml"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def audit_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Shop:
    """The billing tools, recording what actually ran."""

    def __init__(self, engine: writ.Engine) -> None:
        self.ran: list[tuple[str, Any]] = []

        @governed_tool(engine, action="read:customer")
        def lookup_customer(customer_id: str) -> str:
            """Look a customer up."""
            self.ran.append(("lookup", customer_id))
            return f"customer {customer_id}: Alice, plan pro"

        @governed_tool(engine, action="write:refund")
        def refund(customer_id: str, amount: float) -> str:
            """Refund an amount to a customer."""
            self.ran.append(("refund", amount))
            return f"refunded {amount} to {customer_id}"

        @governed_tool(engine, action="delete:customer")
        async def delete_customer(customer_id: str) -> str:
            """Delete a customer's account."""
            self.ran.append(("delete", customer_id))
            return f"deleted {customer_id}"

        self.tools = [lookup_customer, refund, delete_customer]


@pytest.mark.skipif(not SUPPORTS_APPROVAL, reason="this SDK has no approvals (before 0.8)")
@pytest.mark.parametrize("policy", POLICIES)
def test_the_support_scenario(policy: str, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    engine = writ.load(EXAMPLES / policy, audit=str(audit))
    shop = Shop(engine)
    billing_model = model(
        "gpt-4.1-mini",
        [
            [
                call("lookup_customer", {"customer_id": "c1"}, "call_lookup"),
                call("refund", {"customer_id": "c1", "amount": 79.99}, "call_small"),
            ],
            [call("refund", {"customer_id": "c1", "amount": 500}, "call_big")],
            [call("delete_customer", {"customer_id": "c1"}, "call_delete")],
            [say("All done.")],
        ],
    )
    billing = Agent(name="billing-agent", instructions="Billing.", model=billing_model, tools=shop.tools)
    engineering = Agent(name="engineering-agent", instructions="Engineering.", model=model("gpt-4.1-mini", []))
    triage_model = model("gpt-4.1-mini", [[call("transfer_to_billing_agent", {}, "call_handoff")]])
    triage = Agent(
        name="triage-agent",
        instructions="Triage.",
        model=triage_model,
        handoffs=[governed_handoff(engine, billing), governed_handoff(engine, engineering)],
    )
    hooks = WritHooks(engine)

    result = run(Runner.run(triage, "Refund my order, then close my account.", hooks=hooks))

    # The engineering handoff was never offered; billing was.
    _, handoffs = offered(triage_model, 0)
    assert handoffs == ["transfer_to_billing_agent"]
    # The lookup and the small refund ran; the big refund did not, and the
    # model saw the policy's reason as the tool's output.
    assert shop.ran == [("lookup", "c1"), ("refund", 79.99)]
    seen = tool_outputs(billing_model, 2)
    assert "Refunds over $100 require manager approval" in seen["call_big"]
    # The delete waits for a human: an SDK interruption, not a refusal.
    assert [i.tool_name for i in result.interruptions] == ["delete_customer"]
    assert ("delete", "c1") not in shop.ran

    state = result.to_state()
    state.approve(result.interruptions[0])
    result = run(Runner.run(triage, state, hooks=hooks))
    assert shop.ran[-1] == ("delete", "c1")
    assert result.final_output == "All done."
    assert result.last_agent.name == "billing-agent"

    # A retired model is refused before it is called.
    retired = model("gpt-3.5-turbo", [[say("should never be said")]])
    old = Agent(name="billing-agent", instructions="Old.", model=retired)
    with pytest.raises(writ.PolicyDenied) as refused:
        run(Runner.run(old, "hi", hooks=WritHooks(engine)))
    assert refused.value.decision.decision == "deny"
    assert refused.value.decision.action == "model:use"
    assert calls(retired) == 0

    # The audit log: every decision, in order, with the chain.
    engine.flush()
    records = audit_records(audit)
    decisions = [
        (r["action"], r["target"], r["decision"], r["chain"])
        for r in records
        if not r["action"].startswith(("tool:", "agent:handoff", "model:call"))
    ]
    triage_only = ["triage-agent"]
    both = ["triage-agent", "billing-agent"]
    expected = [
        ("model:use", "gpt-4.1-mini", "allow", triage_only),
        ("agent:delegate", "billing-agent", "allow", triage_only),
        ("model:use", "gpt-4.1-mini", "allow", both),
        ("read:customer", "lookup_customer", "allow", both),
        ("write:refund", "refund", "allow", both),
        ("model:use", "gpt-4.1-mini", "allow", both),
        ("write:refund", "refund", "deny", both),
        ("model:use", "gpt-4.1-mini", "allow", both),
        ("delete:customer", "delete_customer", "approve", both),
        ("model:use", "gpt-4.1-mini", "allow", both),
        ("model:use", "gpt-3.5-turbo", "deny", ["billing-agent"]),
    ]
    assert decisions == expected, json.dumps(decisions, indent=1)
    # The tool calls' arguments are the request's context.
    refunds = [r for r in records if r["action"] == "write:refund"]
    assert [r["context"]["amount"] for r in refunds] == [79.99, 500]
    # Tool starts and ends and the handoff are recorded as events.
    events = [(r["action"], r["target"]) for r in records if r["action"].startswith(("tool:", "agent:handoff"))]
    assert ("agent:handoff", "billing-agent") in events
    # The SDK starts a governed tool before its wrapper decides: both
    # refunds started, only one ran.
    assert events.count(("tool:start", "refund")) == 2
    assert ("tool:end", "delete_customer") in events
    engine.close()


def _outcomes(policy: str, tmp_path: Path) -> list[Any]:
    """What each step of the scenario came to under one policy file."""
    engine = writ.load(EXAMPLES / policy)
    both = ["triage-agent", "billing-agent"]
    checks = [
        ("billing-agent", "read:customer", "lookup_customer", {"customer_id": "c1"}, both),
        ("billing-agent", "write:refund", "refund", {"amount": 79.99}, both),
        ("billing-agent", "write:refund", "refund", {"amount": 500}, both),
        ("billing-agent", "delete:customer", "delete_customer", {}, both),
        ("triage-agent", "agent:delegate", "billing-agent", {}, None),
        ("triage-agent", "agent:delegate", "engineering-agent", {}, None),
        ("billing-agent", "model:use", "gpt-4.1-mini", {}, both),
        ("billing-agent", "model:use", "gpt-3.5-turbo", {}, both),
    ]
    return [engine.check(a, act, target=t, context=c, chain=ch).decision for a, act, t, c, ch in checks]


def test_the_three_dialects_decide_alike(tmp_path: Path) -> None:
    outcomes = {p: _outcomes(p, tmp_path) for p in POLICIES}
    expected = ["allow", "allow", "deny", "approve", "allow", "deny", "allow", "deny"]
    for policy, got in outcomes.items():
        assert got == expected, policy


def test_a_rejected_approval_never_runs_the_tool() -> None:
    if not SUPPORTS_APPROVAL:
        pytest.skip("this SDK has no approvals")
    engine = writ.load(EXAMPLES / "support.writ")
    shop = Shop(engine)
    m = model(
        "gpt-4.1-mini",
        [[call("delete_customer", {"customer_id": "c9"}, "call_del")], [say("Not deleted.")]],
    )
    billing = Agent(name="billing-agent", instructions="Billing.", model=m, tools=shop.tools)
    result = run(Runner.run(billing, "delete c9", hooks=WritHooks(engine)))
    state = result.to_state()
    state.reject(result.interruptions[0])
    result = run(Runner.run(billing, state, hooks=WritHooks(engine)))
    assert shop.ran == []
    assert result.final_output == "Not deleted."


@pytest.mark.parametrize("tool_kwargs", [{}, {"failure_error_function": None}])
def test_deny_can_raise_instead_of_telling_the_model(tool_kwargs: dict[str, Any]) -> None:
    # `Runner.run` raises `writ.PolicyDenied` itself (not the SDK's
    # `UserError` around it), with the SDK's default tool error handling
    # and without it.
    engine = writ.load(EXAMPLES / "support.writ")
    ran: list[float] = []

    @governed_tool(engine, action="write:refund", on_deny="raise", **tool_kwargs)
    def refund(amount: float) -> str:
        """Refund."""
        ran.append(amount)
        return "refunded"

    m = model("gpt-4.1-mini", [[call("refund", {"amount": 1000}, "c1")], [say("x")]])
    billing = Agent(name="billing-agent", instructions="Billing.", model=m, tools=[refund])
    with pytest.raises(writ.PolicyDenied) as raised:
        run(Runner.run(billing, "refund 1000", hooks=WritHooks(engine)))
    assert raised.value.decision.decision == "deny"
    assert raised.value.decision.reason == "Refunds over $100 require manager approval"
    assert ran == []
    # The model was not asked again: the run stopped at the refusal.
    assert calls(m) == 1


def test_govern_agent_governs_every_tool_through_a_guardrail() -> None:
    engine = writ.load(EXAMPLES / "support.writ")
    ran: list[float] = []

    @agents.function_tool
    def refund(amount: float) -> str:
        """Refund."""
        ran.append(amount)
        return f"refunded {amount}"

    m = model(
        "gpt-4.1-mini",
        [[call("refund", {"amount": 20}, "c_ok"), call("refund", {"amount": 400}, "c_no")], [say("ok")]],
    )
    billing = Agent(name="billing-agent", instructions="Billing.", model=m, tools=[refund])
    billing.tools = [refund]
    govern_agent(engine, billing, action="write:refund")
    result = run(Runner.run(billing, "two refunds", hooks=WritHooks(engine)))
    assert ran == [20]
    outputs = tool_outputs(m, 1)
    assert outputs["c_ok"] == "refunded 20.0"
    assert "Refunds over $100" in outputs["c_no"]
    assert result.final_output == "ok"


def test_output_guardrail_masks_secrets_before_the_model_sees_them() -> None:
    @agents.function_tool
    def account() -> dict[str, Any]:
        """Account details."""
        return {"name": "Alice", "api_token": "tok_live_123", "nested": {"Password": "hunter2"}}

    # Set on the tool (the `function_tool` argument exists from SDK 0.7).
    account.tool_output_guardrails = [writ_output_guardrail(["*token*", "password"])]

    m = model("gpt-4.1-mini", [[call("account", {}, "c1")], [say("ok")]])
    a = Agent(name="billing-agent", instructions="x", model=m, tools=[account])
    run(Runner.run(a, "account"))
    seen = json.loads(tool_outputs(m, 1)["c1"])
    assert seen == {"name": "Alice", "api_token": "***", "nested": {"Password": "***"}}


def test_the_chain_follows_handoffs_and_is_checked() -> None:
    # A policy in which billing may refund only when it was handed the
    # work by triage: the chain decides.
    src = """
policy "chain" { default deny }
agent "triage-agent" { }
agent "billing-agent" { }
rule models: allow "model:use"
rule handoff: allow "agent:delegate" on billing-agent
  for agents [triage-agent]
rule refunds: allow "write:refund"
"""
    engine = writ.Engine.from_source(src) if hasattr(writ.Engine, "from_source") else None
    if engine is None:
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"writ-chain-{os.getpid()}.writ"
        path.write_text(src)
        engine = writ.load(path)
    seen_chains: list[list[str]] = []

    @governed_tool(engine, action="write:refund")
    def refund(amount: float) -> str:
        """Refund."""
        return "ok"

    bm = model("gpt-4.1-mini", [[call("refund", {"amount": 5}, "c1")], [say("done")]])
    billing = Agent(name="billing-agent", instructions="b", model=bm, tools=[refund])

    class Spy(WritHooks):
        async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
            seen_chains.append(current_chain(context))
            await super().on_tool_start(context, agent, tool)

    tm = model("gpt-4.1-mini", [[call("transfer_to_billing_agent", {}, "h1")]])
    triage = Agent(name="triage-agent", instructions="t", model=tm, handoffs=[governed_handoff(engine, billing)])
    result = run(Runner.run(triage, "refund", hooks=Spy(engine)))
    assert result.final_output == "done"
    assert seen_chains == [["triage-agent", "billing-agent"]]
    # The same tool call from an agent the chain does not permit is refused.
    d = engine.check(
        "billing-agent",
        "write:refund",
        target="refund",
        chain=["stranger", "billing-agent"],
    )
    assert d.decision == "deny"


def test_model_name() -> None:
    assert model_name(Agent(name="a", model="gpt-4.1")) == "gpt-4.1"
    assert model_name(Agent(name="a", model=model("gpt-x", []))) == "gpt-x"
    assert isinstance(model_name(Agent(name="a")), str)


@pytest.mark.skipif(not SUPPORTS_APPROVAL, reason="this SDK has no approvals (before 0.8)")
@pytest.mark.parametrize("policy", POLICIES)
def test_the_example_agent_runs_offline(policy: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "support_agent.py"), policy],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
    )
    assert out.returncode == 0, out.stderr
    # It runs cleanly: no SDK warning (a handoff tool name with `-`), no
    # policy warning.
    assert out.stderr == ""
    text = out.stdout
    assert "refund tool ran: 79.99" in text
    assert "refund tool ran: 500" not in text
    assert "approval needed: delete_customer" in text
    assert "delete tool ran: c1" in text
    assert "final answer: Refunded 79.99" in text
    assert (tmp_path / "support-audit.jsonl").exists()


@pytest.mark.skipif(SUPPORTS_APPROVAL, reason="this SDK has approvals")
def test_without_sdk_approvals_an_approve_decision_raises() -> None:
    engine = writ.load(EXAMPLES / "support.writ")
    shop = Shop(engine)
    m = model("gpt-4.1-mini", [[call("delete_customer", {"customer_id": "c9"}, "d1")], [say("x")]])
    billing = Agent(name="billing-agent", instructions="b", model=m, tools=shop.tools)
    with pytest.raises(Exception) as raised:
        run(Runner.run(billing, "delete", hooks=WritHooks(engine)))
    chain = [raised.value, raised.value.__cause__, raised.value.__context__]
    assert any(isinstance(e, writ.ApprovalRequired) for e in chain), raised.value
    assert shop.ran == []


# --- handoffs as MeshGuard names them: `handoff:<Agent Name>` ---

SEEDS = Path(__file__).resolve().parents[2] / "examples" / "seeds"

# The MeshGuard policy of seed 001 applies to agents tagged `openai` or
# `support` (`appliesTo`); these declarations give the agents their tags.
SUPPORT_AGENTS = """
agent "Tier 1 Support" {
  tags [support]
}

agent "Billing Specialist" {
  tags [support]
}

agent "Escalation Manager" {
  tags [support]
}
"""


def _tier1(engine: writ.Engine, steps: list[list[Any]], billing_steps: list[list[Any]]) -> tuple[Any, Agent, Any]:
    billing_model = model("gpt-4.1-mini", billing_steps)
    billing = Agent(name="Billing Specialist", instructions="Billing.", model=billing_model)
    escalation = Agent(name="Escalation Manager", instructions="Escalations.", model=model("gpt-4.1", []))
    engineering = Agent(name="Engineering", instructions="Bugs.", model=model("gpt-4.1", []))
    tier1_model = model("gpt-4.1-mini", steps)
    tier1 = Agent(
        name="Tier 1 Support",
        instructions="Triage.",
        model=tier1_model,
        handoffs=[
            governed_handoff(engine, billing),
            governed_handoff(engine, escalation),
            governed_handoff(engine, engineering),
        ],
    )
    return tier1_model, tier1, billing_model


def test_the_meshguard_seed_governs_handoffs_unchanged(tmp_path: Path) -> None:
    agents_file = tmp_path / "agents.writ"
    agents_file.write_text(SUPPORT_AGENTS)
    audit = tmp_path / "audit.jsonl"
    # Any tagged agent may hand off to either specialist: a cycle, which
    # the load reports (and the seed's MeshGuard users never saw).
    with pytest.warns(writ.PolicyWarning, match=r"warning\[W0202\]: delegation cycle"):
        engine = writ.load([agents_file, SEEDS / "meshguard-openai-support.yaml"], audit=str(audit))
    tier1_model, tier1, _ = _tier1(
        engine,
        [[call("transfer_to_billing_specialist", {}, "h1")]],
        [[say("Refund handled.")]],
    )

    result = run(Runner.run(tier1, "I need a refund", hooks=WritHooks(engine, check_models=False)))

    # The policy allows `handoff:Billing Specialist` and
    # `handoff:Escalation Manager`; Engineering is never named, so its
    # handoff (denied by `defaultEffect: deny`) is not offered.
    _, handoffs = offered(tier1_model, 0)
    assert handoffs == ["transfer_to_billing_specialist", "transfer_to_escalation_manager"]
    assert result.last_agent.name == "Billing Specialist"
    assert result.final_output == "Refund handled."
    engine.flush()
    decided = [r for r in audit_records(audit) if r["reason"] != "event"]
    # One decision for the handoff, asked as the policy names it, with
    # what MeshGuard sends as context.
    assert [(r["action"], r["target"], r["decision"], r["rule"], r["chain"]) for r in decided] == [
        ("handoff:Billing Specialist", None, "allow", "allow_handoff_billing_specialist", ["Tier 1 Support"])
    ]
    assert decided[0]["context"] == {"from_agent": "Tier 1 Support", "to_agent": "Billing Specialist"}
    engine.close()


def test_the_meshguard_seed_governs_a_second_handoff_down_the_chain(tmp_path: Path) -> None:
    agents_file = tmp_path / "agents.writ"
    agents_file.write_text(SUPPORT_AGENTS)
    audit = tmp_path / "audit.jsonl"
    with pytest.warns(writ.PolicyWarning):
        engine = writ.load([agents_file, SEEDS / "meshguard-openai-support.yaml"], audit=str(audit))
    escalation = Agent(
        name="Escalation Manager", instructions="e", model=model("gpt-4.1", [[say("Escalated.")]])
    )
    billing = Agent(
        name="Billing Specialist",
        instructions="Billing.",
        model=model("gpt-4.1-mini", [[call("transfer_to_escalation_manager", {}, "h2")]]),
        handoffs=[governed_handoff(engine, escalation)],
    )
    tier1 = Agent(
        name="Tier 1 Support",
        instructions="Triage.",
        model=model("gpt-4.1-mini", [[call("transfer_to_billing_specialist", {}, "h1")]]),
        handoffs=[governed_handoff(engine, billing)],
    )

    result = run(Runner.run(tier1, "escalate my refund"))

    assert result.last_agent.name == "Escalation Manager"
    assert result.final_output == "Escalated."
    engine.flush()
    # The second handoff is decided with the chain: its hop from Tier 1
    # Support (allowed as `handoff:Billing Specialist`) and, under the
    # strict ceiling, Tier 1 Support's own permission to hand off to the
    # Escalation Manager.
    assert [(r["action"], r["decision"], r["chain"]) for r in audit_records(audit)] == [
        ("handoff:Billing Specialist", "allow", ["Tier 1 Support"]),
        ("handoff:Escalation Manager", "allow", ["Tier 1 Support", "Billing Specialist"]),
    ]
    engine.close()


def test_without_its_tags_the_meshguard_seed_offers_no_handoff() -> None:
    # `appliesTo: tags` scopes every rule: untagged agents get the default
    # deny, so no handoff is offered (fail closed).
    engine = writ.load(SEEDS / "meshguard-openai-support.yaml")
    tier1_model, tier1, _ = _tier1(engine, [[say("I cannot transfer you.")]], [])
    result = run(Runner.run(tier1, "I need a refund"))
    assert offered(tier1_model, 0)[1] == []
    assert result.last_agent.name == "Tier 1 Support"


def test_a_handoff_deny_is_not_undone_by_an_allow_of_agent_delegate(tmp_path: Path) -> None:
    # `*` allows `agent:delegate`; the policy denies one handoff by name.
    policy = tmp_path / "wildcard.yaml"
    policy.write_text(
        """\
name: wildcard
rules:
  - effect: deny
    actions: ["handoff:Escalation Manager"]
    reason: "Escalations go through a human"
  - effect: allow
    actions: ["*"]
defaultEffect: deny
"""
    )
    engine = writ.load(policy, dialect="meshguard")
    tier1_model, tier1, _ = _tier1(
        engine,
        [[call("transfer_to_billing_specialist", {}, "h1")]],
        [[say("Billing here.")]],
    )
    result = run(Runner.run(tier1, "help", hooks=WritHooks(engine)))
    assert offered(tier1_model, 0)[1] == ["transfer_to_billing_specialist", "transfer_to_engineering"]
    assert result.last_agent.name == "Billing Specialist"


def test_a_writ_policy_speaking_only_of_agent_delegate_still_decides(tmp_path: Path) -> None:
    policy = tmp_path / "p.writ"
    policy.write_text(
        """\
policy "p" { default deny }
rule to_billing: allow "agent:delegate" on "Billing Specialist"
  for agents ["Tier 1 Support"]
"""
    )
    audit = tmp_path / "audit.jsonl"
    engine = writ.load(policy, audit=str(audit))
    tier1_model, tier1, _ = _tier1(
        engine,
        [[call("transfer_to_billing_specialist", {}, "h1")]],
        [[say("Billing here.")]],
    )
    result = run(Runner.run(tier1, "help"))
    assert offered(tier1_model, 0)[1] == ["transfer_to_billing_specialist"]
    assert result.last_agent.name == "Billing Specialist"
    engine.flush()
    assert [(r["action"], r["target"], r["decision"]) for r in audit_records(audit)] == [
        ("agent:delegate", "Billing Specialist", "allow")
    ]
    engine.close()


def test_a_handoff_needing_approval_raises_approval_required_from_the_run(tmp_path: Path) -> None:
    policy = tmp_path / "p.writ"
    policy.write_text(
        """\
policy "p" { default deny }
rule escalations: approve "handoff:Escalation Manager"
  because "a human decides escalations"
"""
    )
    engine = writ.load(policy)
    tier1_model, tier1, _ = _tier1(engine, [[call("transfer_to_escalation_manager", {}, "h1")]], [])
    with pytest.raises(writ.ApprovalRequired) as raised:
        run(Runner.run(tier1, "escalate"))
    # Offered (an approve is not a deny), then stopped before the handoff.
    assert offered(tier1_model, 0)[1] == ["transfer_to_escalation_manager"]
    assert raised.value.decision.action == "handoff:Escalation Manager"
    assert raised.value.decision.reason == "a human decides escalations"


def test_an_explicit_action_asks_only_that_action(tmp_path: Path) -> None:
    policy = tmp_path / "p.writ"
    policy.write_text(
        """\
policy "p" { default deny }
rule handoffs: allow "handoff:*"
"""
    )
    engine = writ.load(policy)
    m = model("gpt-4.1-mini", [[say("no")]])
    billing = Agent(name="Billing Specialist", instructions="b", model=model("gpt-4.1", []))
    tier1 = Agent(
        name="Tier 1 Support",
        instructions="t",
        model=m,
        handoffs=[
            governed_handoff(engine, billing, action="agent:delegate"),
            governed_handoff(engine, billing, tool_name_override="default_forms"),
        ],
    )
    run(Runner.run(tier1, "hi"))
    assert offered(m, 0)[1] == ["default_forms"]


def test_handoff_tool_names_are_made_valid_without_an_sdk_warning(caplog: pytest.LogCaptureFixture) -> None:
    engine = writ.load(EXAMPLES / "support.writ")
    with caplog.at_level("WARNING", logger="openai.agents"):
        h = governed_handoff(engine, Agent(name="billing-agent", instructions="b"))
    assert h.tool_name == "transfer_to_billing_agent"
    assert not [r for r in caplog.records if "invalid characters" in r.getMessage()], caplog.text
