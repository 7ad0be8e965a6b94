"""A support team on the OpenAI Agents SDK, governed by writ — offline.

A triage agent hands a customer to a billing agent, which looks the
customer up, refunds 79.99, tries to refund 500 (refused: the model is told
why), and deletes the account only after a human approves. The models are
scripted, so this runs without network or API key:

    pip install ./python openai-agents
    python examples/python/support_agent.py [support.writ|support.meshguard.yaml|support.aegis.yaml]

Every decision lands in ``support-audit.jsonl`` (check it with
``writ audit verify support-audit.jsonl``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENAI_API_KEY", "sk-offline-example")

import agents
from agents import Agent, Model, ModelResponse, Runner, Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

import writ
from writ.agents import WritHooks, governed_handoff, governed_tool

HERE = Path(__file__).resolve().parent


class Scripted(Model):
    """Answers with the next scripted output items (stands in for OpenAI)."""

    def __init__(self, name: str, steps: list[list[object]]) -> None:
        self.model = name
        self.steps = list(steps)

    async def get_response(self, *args: object, **kwargs: object) -> ModelResponse:
        return ModelResponse(output=self.steps.pop(0), usage=Usage(), response_id=None)

    async def stream_response(self, *args: object, **kwargs: object):  # pragma: no cover
        raise NotImplementedError
        yield


def call(name: str, args: dict[str, object], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{call_id}", call_id=call_id, type="function_call",
        name=name, arguments=json.dumps(args), status="completed",
    )


def say(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


async def main(policy: str) -> None:
    agents.set_tracing_disabled(True)
    audit = Path("support-audit.jsonl")
    audit.unlink(missing_ok=True)
    engine = writ.load(HERE / policy, audit=str(audit))

    @governed_tool(engine, action="read:customer")
    def lookup_customer(customer_id: str) -> str:
        """Look a customer up."""
        return f"{customer_id}: Alice, plan pro"

    @governed_tool(engine, action="write:refund")
    def refund(customer_id: str, amount: float) -> str:
        """Refund an amount to a customer."""
        print(f"  refund tool ran: {amount}")
        return f"refunded {amount}"

    @governed_tool(engine, action="delete:customer")
    def delete_customer(customer_id: str) -> str:
        """Delete a customer's account."""
        print(f"  delete tool ran: {customer_id}")
        return f"deleted {customer_id}"

    billing = Agent(
        name="billing-agent",
        instructions="You handle billing.",
        model=Scripted("gpt-4.1-mini", [
            [call("lookup_customer", {"customer_id": "c1"}, "1"),
             call("refund", {"customer_id": "c1", "amount": 79.99}, "2")],
            [call("refund", {"customer_id": "c1", "amount": 500}, "3")],
            [call("delete_customer", {"customer_id": "c1"}, "4")],
            [say("Refunded 79.99; 500 needs a manager; account closed.")],
        ]),
        tools=[lookup_customer, refund, delete_customer],
    )
    engineering = Agent(name="engineering-agent", instructions="You fix bugs.")
    triage = Agent(
        name="triage-agent",
        instructions="You route customers.",
        model=Scripted("gpt-4.1-mini", [[call("transfer_to_billing_agent", {}, "0")]]),
        handoffs=[governed_handoff(engine, billing), governed_handoff(engine, engineering)],
    )
    hooks = WritHooks(engine)

    result = await Runner.run(triage, "Refund me and close my account.", hooks=hooks)
    for item in result.interruptions:
        print(f"approval needed: {item.tool_name}({item.arguments}) — approving")
    state = result.to_state()
    for item in result.interruptions:
        state.approve(item)
    result = await Runner.run(triage, state, hooks=hooks)
    print("final answer:", result.final_output)

    engine.close()
    print(f"\n{audit}:")
    for line in audit.read_text().splitlines():
        r = json.loads(line)
        print(f"  {r['decision']:8} {r['action']:16} {str(r['target']):18} chain={r['chain']}"
              f"  {r['reason'] or ''}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "support.writ"))
