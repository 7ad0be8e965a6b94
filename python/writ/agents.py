"""Govern OpenAI Agents SDK agents with a writ engine.

Every tool call, handoff and model call of an agent built with the OpenAI
Agents SDK (``openai-agents``) can be decided by a compiled writ policy
before it happens::

    import writ
    from writ.agents import WritHooks, governed_handoff, governed_tool

    engine = writ.load("policies/", audit="audit.jsonl")

    @governed_tool(engine)              # action "tool:call", target "refund"
    def refund(amount: float, currency: str) -> str:
        ...

    billing = Agent(name="billing-agent", tools=[refund])
    triage = Agent(name="triage-agent", handoffs=[governed_handoff(engine, billing)])
    result = await Runner.run(triage, "...", hooks=WritHooks(engine))

- A **denied** tool call does not run; the model sees the reason as the
  tool's output (or the run raises :class:`writ.PolicyDenied`, with
  ``on_deny="raise"``).
- A tool call that **needs approval** goes through the SDK's own
  human-in-the-loop path: it shows up in ``result.interruptions`` and runs
  only after ``state.approve(item)`` (SDK 0.8.1 and later).
- A **handoff** is asked both ways a policy names one: ``agent:delegate``
  on the target agent (writ, MeshGuard's delegation rules) and
  ``handoff:<Agent Name>`` (MeshGuard's Agents SDK integration); see
  :func:`governed_handoff`. One the policy never allows is not offered to
  the model; one refused in context raises :class:`writ.PolicyDenied` (the
  SDK has no way to refuse a handoff softly). The delegation chain is
  tracked across handoffs and sent with every later check.
- What these raise inside a run (:class:`PolicyDenied`,
  :class:`ApprovalRequired` here) are :class:`writ.PolicyDenied` and
  :class:`writ.ApprovalRequired` that are also the SDK's
  ``AgentsException``, so ``Runner.run`` raises them as they are.
- :class:`WritHooks` checks ``model:use`` (target: the model's name) before
  every model call and records tool starts and ends, handoffs and model
  calls in the engine's audit log.

Supported SDK versions: 0.8.1 and later for everything (tested with 0.8.1
and 0.24.0); 0.4-0.8.0 (tested with 0.4.0) have tool guardrails but no
approvals, so there a decision that needs approval raises
:class:`writ.ApprovalRequired` instead.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import json
import re
import weakref
from typing import Any, Callable, Iterable, Optional, Sequence, Union

_INSTALL = 'writ.agents needs the OpenAI Agents SDK 0.4 or later: pip install "writ[agents]"'

try:
    from agents import (
        Agent,
        FunctionTool,
        Handoff,
        RunContextWrapper,
        RunHooks,
        ToolGuardrailFunctionOutput,
        ToolInputGuardrailData,
        ToolOutputGuardrailData,
        function_tool,
        handoff,
        tool_input_guardrail,
        tool_output_guardrail,
    )
    from agents.exceptions import AgentsException
except ImportError as missing:  # no SDK, or one older than 0.4
    raise ImportError(f"{_INSTALL} ({missing})", name=missing.name) from missing

from . import ApprovalRequired as _ApprovalRequired
from . import Decision, Engine
from . import PolicyDenied as _PolicyDenied


class PolicyDenied(_PolicyDenied, AgentsException):  # type: ignore[misc]
    """:class:`writ.PolicyDenied`, raised inside an SDK run.

    Also an SDK ``AgentsException``, which the SDK's runner lets through
    as it is (it wraps other exceptions raised in tools in ``UserError``),
    so ``except writ.PolicyDenied`` around ``Runner.run`` catches it.
    """


class ApprovalRequired(_ApprovalRequired, AgentsException):  # type: ignore[misc]
    """:class:`writ.ApprovalRequired`, raised inside an SDK run (see
    :class:`PolicyDenied`)."""


__all__ = [
    "ApprovalRequired",
    "PolicyDenied",
    "WritHooks",
    "current_chain",
    "govern_agent",
    "governed_handoff",
    "governed_tool",
    "model_name",
    "refusal_message",
    "writ_tool_guardrail",
    "writ_output_guardrail",
]

#: Whether this SDK has human-in-the-loop approvals (0.8 and later).
SUPPORTS_APPROVAL = "needs_approval" in getattr(FunctionTool, "__dataclass_fields__", {})

Refusal = Callable[[Decision], str]


def refusal_message(decision: Decision) -> str:
    """The text the model sees for a refused tool call."""
    reason = decision.reason or "refused by policy"
    rule = f" (rule `{decision.rule}`)" if decision.rule else ""
    if decision.decision == "approve":
        return f"Not run: this call needs human approval{rule}: {reason}"
    retry = (
        f" Try again in {decision.retry_after_s} s."
        if decision.retry_after_s is not None
        else ""
    )
    return f"Refused by policy{rule}: {reason}.{retry}"


# --- per-run state: the acting agent, the delegation chain, decisions ---


class _Run:
    """What writ keeps about one run of the SDK's runner."""

    __slots__ = ("agent", "chain", "decisions", "__weakref__")

    def __deepcopy__(self, memo: dict[int, Any]) -> "_Run":
        # The SDK deep-copies the run's usage into a paused run's state.
        copied = _Run()
        copied.agent = self.agent
        copied.chain = list(self.chain)
        copied.decisions = dict(self.decisions)
        return copied

    def __init__(self) -> None:
        self.agent: Optional[str] = None
        self.chain: list[str] = []
        # Decisions made when the SDK asked whether a call needs approval,
        # by call id, reused when the call runs (one decision, one audit
        # record and one count against a limit per call).
        self.decisions: dict[str, Decision] = {}

    def enter(self, agent: str) -> None:
        self.agent = agent
        if not self.chain:
            self.chain = [agent]

    def chain_for(self, agent: str) -> list[str]:
        if self.chain and self.chain[-1] == agent:
            return list(self.chain)
        if agent in self.chain:
            return self.chain[: self.chain.index(agent) + 1]
        return [agent]


_RUNS: dict[int, tuple[Callable[[], Any], _Run]] = {}


def _run(ctx: Any) -> _Run:
    """The state of the run `ctx` belongs to.

    The SDK makes a new context object for each tool call, but every one of
    them shares the run's ``usage`` object, and a paused run's state
    (``result.to_state()``) carries a copy of it: writ keeps its state on
    it, so the chain and pending decisions survive an approval and resume
    in the same process. (A state serialized with ``to_string`` starts a
    new chain at the agent that resumes.)
    """
    usage = getattr(ctx, "usage", None)
    if usage is not None:
        run = vars(usage).get("_writ_run") if hasattr(usage, "__dict__") else None
        if isinstance(run, _Run):
            return run
        run = _Run()
        try:
            setattr(usage, "_writ_run", run)
            return run
        except (AttributeError, TypeError, ValueError):
            pass
    key = usage if usage is not None else ctx
    k = id(key)
    found = _RUNS.get(k)
    if found is not None and found[0]() is key:
        return found[1]
    run = _Run()
    try:
        ref: Callable[[], Any] = weakref.ref(key, lambda _r, k=k: _RUNS.pop(k, None))
    except TypeError:
        ref = lambda key=key: key  # noqa: E731 - kept alive with the entry
    _RUNS[k] = (ref, run)
    return run


def current_chain(ctx: Any) -> list[str]:
    """The delegation chain of the run `ctx` belongs to (outermost first)."""
    return list(_run(ctx).chain)


def _agent_of(ctx: Any, fallback: Optional[str]) -> Optional[str]:
    agent = getattr(ctx, "agent", None)  # ToolContext.agent, SDK 0.9+
    name = getattr(agent, "name", None)
    if isinstance(name, str):
        return name
    if fallback is not None:
        return fallback
    return _run(ctx).agent


def model_name(agent: Agent) -> str:
    """The name of the model an agent calls (its ``model`` setting, or the
    SDK's default model)."""
    m = getattr(agent, "model", None)
    if m is None:
        try:
            from agents.models import get_default_model

            return str(get_default_model())
        except ImportError:  # pragma: no cover - very old SDKs
            return "default"
    if isinstance(m, str):
        return m
    for attr in ("model", "name"):
        value = getattr(m, attr, None)
        if isinstance(value, str):
            return value
    return type(m).__name__


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return {"arguments": str(raw)}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def _decide(
    engine: Engine,
    ctx: Any,
    agent: Optional[str],
    action: str,
    target: Optional[str],
    context: dict[str, Any],
    call_id: Optional[str] = None,
) -> Decision:
    run = _run(ctx)
    if call_id is not None:
        made = run.decisions.pop(call_id, None)
        if made is not None:
            return made
    if agent is None:
        # Fail closed: a call nobody can be held to is not allowed.
        return engine.check(
            "(unknown agent)",
            action,
            target=target,
            context=context,
        )
    return engine.check(
        agent,
        action,
        target=target,
        context=context,
        chain=run.chain_for(agent),
    )


# --- tools ---


def governed_tool(
    engine: Engine,
    tool: Union[FunctionTool, Callable[..., Any], None] = None,
    *,
    action: str = "tool:call",
    target: Optional[str] = None,
    agent: Optional[str] = None,
    on_deny: str = "message",
    refusal: Refusal = refusal_message,
    **function_tool_kwargs: Any,
) -> Any:
    """A function tool whose every call is decided by `engine` first.

    `tool` is a function (sync or async; made into a tool with the SDK's
    ``function_tool``, which gets `function_tool_kwargs`) or an existing
    ``FunctionTool``; without it, ``governed_tool`` is a decorator. The
    request: `agent` (default: the agent making the call), `action`,
    `target` (default: the tool's name), the call's arguments as context
    and the run's delegation chain.

    - allow: the tool runs.
    - deny: it does not; the model sees ``refusal(decision)`` as the
      tool's output, or :class:`writ.PolicyDenied` is raised when
      ``on_deny="raise"``.
    - approve: the SDK asks for approval (``result.interruptions``); the
      tool runs once approved (``state.approve``), and a rejection gives
      the model the SDK's rejection message. Without SDK approvals
      (before 0.8) :class:`writ.ApprovalRequired` is raised.
    """
    if on_deny not in ("message", "raise"):
        raise ValueError("on_deny must be 'message' or 'raise'")
    if tool is None:
        return functools.partial(
            governed_tool,
            engine,
            action=action,
            target=target,
            agent=agent,
            on_deny=on_deny,
            refusal=refusal,
            **function_tool_kwargs,
        )
    if not isinstance(tool, FunctionTool):
        if not callable(tool):
            raise TypeError(f"governed_tool wants a function or a FunctionTool, not {tool!r}")
        tool = function_tool(tool, **function_tool_kwargs)
    elif function_tool_kwargs:
        raise TypeError("function_tool arguments apply only when a function is given")
    return _govern_tool(engine, tool, action, target, agent, on_deny, refusal)


def _govern_tool(
    engine: Engine,
    tool: FunctionTool,
    action: str,
    target: Optional[str],
    agent: Optional[str],
    on_deny: str,
    refusal: Refusal,
) -> FunctionTool:
    if getattr(tool, "_writ_governed", False):
        return tool
    name = target if target is not None else tool.name
    invoke = tool.on_invoke_tool

    async def on_invoke_tool(ctx: Any, raw_args: str) -> Any:
        d = _decide(
            engine,
            ctx,
            _agent_of(ctx, agent),
            action,
            name,
            _arguments(raw_args),
            getattr(ctx, "tool_call_id", None),
        )
        if d.decision == "allow":
            return await invoke(ctx, raw_args)
        if d.decision == "approve" and SUPPORTS_APPROVAL:
            # The SDK calls a tool that needs approval only once a human
            # approved it (`needs_approval` below said it does).
            return await invoke(ctx, raw_args)
        if d.decision == "approve":
            raise ApprovalRequired(d)
        if on_deny == "raise":
            raise PolicyDenied(d)
        return refusal(d)

    tool.on_invoke_tool = on_invoke_tool
    if SUPPORTS_APPROVAL:
        earlier = tool.needs_approval

        async def needs_approval(ctx: Any, params: dict[str, Any], call_id: str) -> bool:
            return await _needs_approval(
                engine, ctx, _agent_of(ctx, agent), action, name, params, call_id, earlier
            )

        tool.needs_approval = needs_approval
    tool._writ_governed = True  # type: ignore[attr-defined]
    return tool


async def _needs_approval(
    engine: Engine,
    ctx: Any,
    who: Optional[str],
    action: str,
    name: str,
    params: Any,
    call_id: str,
    earlier: Any,
) -> bool:
    """The SDK asks whether a call needs approval: decide the call (once:
    the SDK may ask again when the run resumes) and keep the decision for
    when it runs."""
    run = _run(ctx)
    d = run.decisions.get(call_id)
    if d is None:
        d = _decide(engine, ctx, who, action, name, dict(params or {}))
        run.decisions[call_id] = d
    if d.decision == "approve":
        return True
    if d.decision == "deny":
        return False  # refused when it runs: no human is asked
    if callable(earlier):
        result = earlier(ctx, params, call_id)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)
    return bool(earlier)


def writ_tool_guardrail(
    engine: Engine,
    *,
    action: str = "tool:call",
    on_deny: str = "message",
    refusal: Refusal = refusal_message,
) -> Any:
    """A tool input guardrail deciding each call of the tools it is attached
    to (target: the tool's name; context: the call's arguments).

    A denied call is rejected with ``refusal(decision)`` as the content the
    model sees (or the run stops with the SDK's tripwire exception when
    ``on_deny="raise"``). A call needing approval passes only if the tool
    asked a human first (see :func:`govern_agent`, which sets that up).
    """

    @tool_input_guardrail(name="writ")
    def writ_policy(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        ctx = data.context
        who = getattr(data.agent, "name", None)
        if isinstance(who, str) and _run(ctx).agent is None:
            _run(ctx).enter(who)
        d = _decide(
            engine,
            ctx,
            who if isinstance(who, str) else None,
            action,
            getattr(ctx, "tool_name", None),
            _arguments(getattr(ctx, "tool_arguments", None)),
            getattr(ctx, "tool_call_id", None),
        )
        info = d.to_dict()
        if d.decision == "allow":
            return ToolGuardrailFunctionOutput.allow(output_info=info)
        if d.decision == "approve" and SUPPORTS_APPROVAL and getattr(
            _tool_named(data), "_writ_asks", False
        ):
            return ToolGuardrailFunctionOutput.allow(output_info=info)
        if on_deny == "raise":
            return ToolGuardrailFunctionOutput.raise_exception(output_info=info)
        return ToolGuardrailFunctionOutput.reject_content(refusal(d), output_info=info)

    return writ_policy


def _tool_named(data: ToolInputGuardrailData) -> Any:
    name = getattr(data.context, "tool_name", None)
    for tool in getattr(data.agent, "tools", None) or []:
        if getattr(tool, "name", None) == name:
            return tool
    return None


def writ_output_guardrail(
    mask: Iterable[str] = ("password", "*secret*", "*token*", "api_key", "apikey", "authorization"),
    *,
    replacement: str = "***",
) -> Any:
    """A tool output guardrail that masks values under keys matching `mask`
    (globs, any case, at any depth) in a tool's output — a dict, a list or
    JSON text — before the model sees it."""
    patterns = [p.lower() for p in mask]

    def masked(value: Any) -> tuple[Any, bool]:
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            changed = False
            for k, v in value.items():
                if isinstance(k, str) and any(fnmatch.fnmatchcase(k.lower(), p) for p in patterns):
                    out[k] = replacement
                    changed = True
                else:
                    out[k], c = masked(v)
                    changed = changed or c
            return out, changed
        if isinstance(value, list):
            items = [masked(v) for v in value]
            return [v for v, _ in items], any(c for _, c in items)
        return value, False

    @tool_output_guardrail(name="writ_mask")
    def writ_mask(data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
        output = data.output
        parsed = output
        if isinstance(output, str):
            try:
                parsed = json.loads(output)
            except ValueError:
                return ToolGuardrailFunctionOutput.allow()
        value, changed = masked(parsed)
        if not changed:
            return ToolGuardrailFunctionOutput.allow()
        return ToolGuardrailFunctionOutput.reject_content(json.dumps(value))

    return writ_mask


def govern_agent(
    engine: Engine,
    agent: Agent,
    *,
    action: str = "tool:call",
    on_deny: str = "message",
    refusal: Refusal = refusal_message,
    mask_output: Optional[Sequence[str]] = None,
) -> Agent:
    """Governs every function tool of `agent` at once: attaches
    :func:`writ_tool_guardrail` to each and, with SDK approvals, makes each
    ask a human when the policy says approve. `mask_output` adds
    :func:`writ_output_guardrail` with those key globs. Returns `agent`."""
    guardrail = writ_tool_guardrail(engine, action=action, on_deny=on_deny, refusal=refusal)
    out_guard = writ_output_guardrail(mask_output) if mask_output is not None else None
    for tool in getattr(agent, "tools", None) or []:
        if not isinstance(tool, FunctionTool):
            continue
        tool.tool_input_guardrails = list(tool.tool_input_guardrails or []) + [guardrail]
        if out_guard is not None:
            tool.tool_output_guardrails = list(tool.tool_output_guardrails or []) + [out_guard]
        if SUPPORTS_APPROVAL and not getattr(tool, "_writ_asks", False):
            earlier = tool.needs_approval
            name = tool.name

            async def needs_approval(
                ctx: Any,
                params: dict[str, Any],
                call_id: str,
                earlier: Any = earlier,
                name: str = name,
            ) -> bool:
                return await _needs_approval(
                    engine, ctx, _agent_of(ctx, agent.name), action, name, params, call_id, earlier
                )

            tool.needs_approval = needs_approval
            tool._writ_asks = True  # type: ignore[attr-defined]
            # The SDK (0.24) asks for approval without consulting
            # `needs_approval` when its own invoker would coerce the
            # arguments (an integer for a float parameter): calling through
            # a wrapper keeps the policy in charge of that question.
            invoke = tool.on_invoke_tool

            async def on_invoke_tool(ctx: Any, raw_args: str, invoke: Any = invoke) -> Any:
                return await invoke(ctx, raw_args)

            tool.on_invoke_tool = on_invoke_tool
    return agent


# --- handoffs ---

#: The two ways a policy names a handoff from one agent to `target`: writ's
#: delegation request (and MeshGuard's `agent:delegate` rules), and the
#: action MeshGuard's Agents SDK integration asks, `handoff:<Agent Name>`
#: (no target). The engine checks a chain's hops the same two ways.
def _handoff_forms(target: str) -> list[tuple[str, Optional[str]]]:
    return [("agent:delegate", target), (f"handoff:{target}", None)]


_STRICTNESS = {"deny": 0, "approve": 1, "allow": 2}


def _handoff_decision(
    engine: Engine,
    who: Optional[str],
    target: str,
    action: Optional[str],
    context: dict[str, Any],
    chain: Optional[list[str]],
    *,
    dry_run: bool,
) -> Decision:
    """Decides a handoff from `who` to `target` (see :func:`governed_handoff`).

    With `action` given, that action alone is asked. Otherwise both forms
    of :func:`_handoff_forms` are: a form the policy says nothing about for
    this agent (its default answers, asked without the chain) is left out,
    and of the others the strictest answer wins: deny, then approve, then
    allow. When the policy speaks of neither, its default decides. The
    answers are found without acting on them; then only the deciding
    request is checked for real, so a handoff makes one audit record and
    counts once against limits.
    """
    agent = who if who is not None else "(unknown agent)"
    forms = [(action, target)] if action is not None else _handoff_forms(target)
    if len(forms) > 1:
        spoken = [
            (a, t)
            for a, t in forms
            if not engine.check(agent, a, target=t, context=context, dry_run=True).defaulted
        ]
        forms = spoken or forms[:1]
    pick = forms[0]
    if len(forms) > 1:
        answers = [
            engine.check(agent, a, target=t, context=context, chain=chain, dry_run=True)
            for a, t in forms
        ]
        strictest = min(range(len(forms)), key=lambda i: _STRICTNESS[answers[i].decision])
        if dry_run:
            return answers[strictest]
        pick = forms[strictest]
    a, t = pick
    return engine.check(agent, a, target=t, context=context, chain=chain, dry_run=dry_run)


def governed_handoff(
    engine: Engine,
    agent: Agent,
    *,
    action: Optional[str] = None,
    on_handoff: Optional[Callable[..., Any]] = None,
    input_type: Any = None,
    **handoff_kwargs: Any,
) -> Handoff:
    """A real SDK ``Handoff`` to `agent`, decided by `engine`.

    The request: the agent handing off, the run's delegation chain, and as
    context the handoff's input (with `input_type`), plus ``from_agent``
    and ``to_agent`` (the two agents' names, as MeshGuard sends them; they
    win over input fields of the same name). The action: both ways a
    policy can name the handoff, ``agent:delegate`` with target
    `agent.name` (writ, and MeshGuard's delegation rules) and
    ``handoff:<agent.name>`` (MeshGuard's Agents SDK integration); a form
    the policy says nothing about for the agent handing off is left out,
    and of the others the strictest answer wins (deny, approve, allow).
    When it speaks of neither, its default decides. Only the deciding
    request is recorded. `action` asks that one action instead (target
    `agent.name`).

    - ``is_enabled``: a handoff the policy denies is not offered to the
      model at all.
    - ``on_handoff``: decided again with the input; deny raises
      :class:`writ.PolicyDenied`, approve raises
      :class:`writ.ApprovalRequired` (the SDK has no approval step for
      handoffs); allow extends the chain and calls your `on_handoff`.
    """
    target = agent.name
    if "tool_name_override" not in handoff_kwargs:
        # The SDK names the handoff tool `transfer_to_<agent name>` with
        # every character other than a letter, digit or `_` made `_`, and
        # logs a warning for each `-` (writ's agent names are
        # `billing-agent`): give it the name it would make, so it has
        # nothing to warn about.
        name = f"transfer_to_{target}"
        tool_name = re.sub(r"[^a-zA-Z0-9_]", "_", name).lower()
        if tool_name != name:
            handoff_kwargs["tool_name_override"] = tool_name

    def request_context(who: Optional[str], data: Any = None) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if data is not None:
            dump = getattr(data, "model_dump", None)
            context = dict(dump()) if callable(dump) else _arguments(data)
        if who is not None:
            context["from_agent"] = who
        context["to_agent"] = target
        return context

    def is_enabled(ctx: RunContextWrapper[Any], source: Any) -> bool:
        who = getattr(source, "name", None)
        if not isinstance(who, str):
            return False
        run = _run(ctx)
        run.enter(who)
        d = _handoff_decision(
            engine,
            who,
            target,
            action,
            request_context(who),
            run.chain_for(who),
            dry_run=True,
        )
        return d.decision != "deny"

    async def enforce(ctx: RunContextWrapper[Any], data: Any = None) -> None:
        run = _run(ctx)
        who = run.agent
        chain = run.chain_for(who) if who is not None else None
        d = _handoff_decision(
            engine, who, target, action, request_context(who, data), chain, dry_run=False
        )
        if d.decision == "deny":
            raise PolicyDenied(d)
        if d.decision == "approve":
            raise ApprovalRequired(d)
        run.chain = (chain or []) + [target]
        run.agent = target
        if on_handoff is not None:
            result = on_handoff(ctx, data) if input_type is not None else on_handoff(ctx)
            if inspect.isawaitable(result):
                await result

    if input_type is not None:

        async def with_input(ctx: RunContextWrapper[Any], data: Any) -> None:
            await enforce(ctx, data)

        return handoff(
            agent,
            on_handoff=with_input,
            input_type=input_type,
            is_enabled=is_enabled,
            **handoff_kwargs,
        )

    async def without_input(ctx: RunContextWrapper[Any]) -> None:
        await enforce(ctx)

    return handoff(agent, on_handoff=without_input, is_enabled=is_enabled, **handoff_kwargs)


# --- hooks ---


class WritHooks(RunHooks):  # type: ignore[misc]
    """Run hooks that decide each model call and record the run.

    - Before each model call: ``model:use`` with the agent's model name as
      target; a denied (or approval-needing) model call raises
      :class:`writ.PolicyDenied` (:class:`writ.ApprovalRequired`) before
      the model is called.
    - Tracks the acting agent and the delegation chain (also for handoffs
      that are not governed).
    - With ``record_events=True`` (the default) and an engine that audits,
      tool starts and ends, handoffs and model calls are recorded as events
      (actions ``tool:start``, ``tool:end``, ``agent:handoff``,
      ``model:call``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        check_models: bool = True,
        record_events: bool = True,
        action: str = "model:use",
    ) -> None:
        super().__init__()
        self.engine = engine
        self.check_models = check_models
        self.record_events = record_events
        self.action = action

    def _event(self, ctx: Any, agent: str, action: str, target: Optional[str], **context: Any) -> None:
        if self.record_events:
            run = _run(ctx)
            self.engine.record_event(
                agent,
                action,
                target=target,
                context=context,
                chain=run.chain_for(agent),
            )

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        _run(context).enter(agent.name)

    async def on_llm_start(self, context: Any, agent: Any, system_prompt: Any, input_items: Any) -> None:
        run = _run(context)
        run.enter(agent.name)
        model = model_name(agent)
        if self.check_models:
            d = self.engine.check(
                agent.name,
                self.action,
                target=model,
                chain=run.chain_for(agent.name),
            )
            if d.decision == "deny":
                raise PolicyDenied(d)
            if d.decision == "approve":
                raise ApprovalRequired(d)
        else:
            self._event(context, agent.name, "model:call", model)

    async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
        run = _run(context)
        if not run.chain or run.chain[-1] != to_agent.name:
            run.chain = run.chain_for(from_agent.name) + [to_agent.name]
        run.agent = to_agent.name
        self._event(context, from_agent.name, "agent:handoff", to_agent.name)

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        _run(context).agent = agent.name
        self._event(context, agent.name, "tool:start", getattr(tool, "name", None))

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        text = result if isinstance(result, str) else repr(result)
        self._event(
            context,
            agent.name,
            "tool:end",
            getattr(tool, "name", None),
            result=text[:500],
        )
