"""Scripted models for running real OpenAI Agents SDK loops offline.

Uses the SDK's own ``agents.testing.ScriptedModel`` where it exists (0.21
and later) and a small ``Model`` subclass otherwise. Each model carries a
``model`` name (what ``writ.agents.model_name`` reports) and records the
tools, handoffs and input of every call it gets.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from agents import Model, ModelResponse, Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

try:  # SDK 0.21+
    from agents.testing import ScriptedModel as _SdkScripted
    from agents.testing import assistant_message as _sdk_message
    from agents.testing import function_call as _sdk_call
except ImportError:  # older SDKs
    _SdkScripted = None


def call(name: str, args: dict[str, Any], call_id: str) -> Any:
    """A function (tool or handoff) call the model makes."""
    if _SdkScripted is not None:
        return _sdk_call(name, args, call_id=call_id)
    return ResponseFunctionToolCall(
        id=f"fc_{call_id}",
        call_id=call_id,
        type="function_call",
        name=name,
        arguments=json.dumps(args),
        status="completed",
    )


def say(text: str) -> Any:
    """A final text answer."""
    if _SdkScripted is not None:
        return _sdk_message(text)
    return ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


class _Own(Model):
    def __init__(self, steps: list[list[Any]]) -> None:
        self.steps = deque(steps)
        self.recorded: list[dict[str, Any]] = []

    def _next(self, input: Any, tools: Any, handoffs: Any) -> list[Any]:
        self.recorded.append(
            {
                "input": input
                if isinstance(input, str)
                else [i if isinstance(i, dict) else i.model_dump() for i in input],
                "tools": [t.name for t in tools],
                "handoffs": [h.tool_name for h in handoffs],
            }
        )
        if not self.steps:
            raise RuntimeError("no more scripted steps")
        return list(self.steps.popleft())

    async def get_response(self, system_instructions, input, model_settings, tools,  # type: ignore[override]
                           output_schema, handoffs, tracing, **kwargs: Any) -> ModelResponse:
        return ModelResponse(output=self._next(input, tools, handoffs), usage=Usage(), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        raise NotImplementedError("streaming is not scripted")
        yield  # pragma: no cover


def model(name: str, steps: list[list[Any]]) -> Any:
    """A scripted model named `name` answering with `steps`, one per call."""
    m = _SdkScripted(steps) if _SdkScripted is not None else _Own(steps)
    m.model = name  # the name the policy sees as `model:use` target
    return m


def _calls(m: Any) -> list[dict[str, Any]]:
    if isinstance(m, _Own):
        return m.recorded
    out = []
    for c in m.calls:
        items = c.input
        out.append(
            {
                "input": items
                if isinstance(items, str)
                else [i if isinstance(i, dict) else i.model_dump() for i in items],
                "tools": [t.name for t in c.tools],
                "handoffs": [h.tool_name for h in c.handoffs],
            }
        )
    return out


def calls(m: Any) -> int:
    """How many times the model was called."""
    return len(_calls(m))


def offered(m: Any, index: int) -> tuple[list[str], list[str]]:
    """The tools and handoffs offered to the model in call `index`."""
    c = _calls(m)[index]
    return c["tools"], c["handoffs"]


def tool_outputs(m: Any, index: int) -> dict[str, str]:
    """The tool outputs (by call id) the model saw in call `index`."""
    inp = _calls(m)[index]["input"]
    if isinstance(inp, str):
        return {}
    return {
        i.get("call_id"): i.get("output")
        for i in inp
        if i.get("type") == "function_call_output"
    }
