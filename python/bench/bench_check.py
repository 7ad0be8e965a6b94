"""How long `engine.check(...)` takes from Python, on a 1,000-rule policy.

Generates a policy (exact, prefix, suffix and glob action patterns; target
patterns; agent scopes; conditions on the context; a few limits), compiles
it to a bundle with `writ.compile`, loads it, and times `engine.check` for a
few request shapes: the median over many batches of `time.perf_counter_ns`.

    python python/bench/bench_check.py [--rules 1000] [--batches 300] [--batch 1000]

Build the extension in release mode first (`maturin develop --release -m
python/Cargo.toml`, or `maturin build --release` and install the wheel).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import writ

AGENTS = 50


def policy(rules: int) -> str:
    """A policy shaped like agent policies: many distinct tools and
    services, rules scoped to agents or roles, conditions on the context, a
    few limits, and a few globs that need an automaton (1%)."""
    out = [
        'policy "bench" {',
        "  combine first-match",
        "  default deny risk medium",
        '  timezone "Europe/Paris"',
        "}",
        "",
    ]
    for a in range(AGENTS):
        out += [f'agent "agent-{a}" {{', f"  roles [team-{a % 10}]", "  tier verified", "}", ""]
    for i in range(rules):
        kind = i % 100
        a = i % AGENTS
        if kind < 40:  # exact action and target, scoped to one agent, some with a condition
            out += [f'rule r{i}: allow "tool:call" on "tool_{i}"', f"  for agents [agent-{a}]", "  risk low"]
            if i % 2:
                out.append(f"  when amount <= {i} and currency in [USD, EUR]")
        elif kind < 60:  # a prefix pattern, a numeric condition, a reason
            out += [f'rule r{i}: deny "api{i}:*"', f"  when amount > {i}", f'  because "amount over {i}"']
        elif kind < 75:  # a suffix pattern, scoped to a role
            out += [f'rule r{i}: allow "*_read{i}"', f"  for roles [team-{i % 10}]"]
        elif kind < 90:  # approvals with a compound condition
            out += [
                f'rule r{i}: approve "pay{i}:refund"',
                "  risk high",
                "  when amount > 100 and currency in [USD, EUR]",
                '  because "payments over 100 need a human"',
            ]
        elif kind < 99:  # a nested context path, a role, a limit
            out += [
                f'rule r{i}: allow "net:connect" on "host-{i}.example.com"',
                f"  for roles [team-{i % 10}]",
                "  when ticket.priority in [high, urgent]",
                "  limit 1000000000 per day",
            ]
        else:  # a glob with `?` and a class: a DFA
            out += [f'rule r{i}: allow "job:run?{i}[ab]"', "  when env in [prod, staging]"]
        out.append("")
    return "\n".join(out)


def shapes() -> list[tuple[str, tuple, dict, str]]:
    return [
        ("exact rule, no context", ("agent-0", "tool:call", "tool_0"), {}, "allow"),
        (
            "condition on context",
            ("agent-4", "pay84:refund"),
            {"context": {"amount": 150, "currency": "USD"}},
            "approve",
        ),
        ("no rule matches", ("agent-7", "nothing:here", "x"), {}, "deny"),
        (
            "nested context (6 keys), role, limit, trace id",
            ("agent-1", "net:connect", "host-91.example.com"),
            {
                "context": {
                    "ticket": {"priority": "urgent", "id": 42},
                    "user": "ann",
                    "amount": 12.5,
                    "tags": ["a", "b"],
                    "ok": True,
                },
                "trace_id": "run-1",
            },
            "allow",
        ),
        ("time given as an RFC 3339 str", ("agent-0", "tool:call", "tool_0"), {"at": "2025-01-15T12:00:00Z"}, "allow"),
    ]


def time_batches(fn, batches: int, batch: int) -> list[float]:
    per_call = []
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        per_call.append((time.perf_counter_ns() - t0) / batch)
    return per_call


def caller(check, args: tuple, kw: dict):
    """A function that calls `check` the way code does: the arguments
    written out, keywords by name (`check(agent, action, context=ctx)`),
    bound as the lambda's defaults so that each is a local. Not
    `check(*args, **kw)`: that makes Python build a new dict for every call
    and pass it by the slower calling convention, a cost of the bench, not
    of `check`."""
    names = [f"a{i}" for i in range(len(args))] + list(kw)
    params = ", ".join(f"{n}={n}" for n in ["check", *names])
    call = ", ".join([f"a{i}" for i in range(len(args))] + [f"{k}={k}" for k in kw])
    scope = {"check": check, **{f"a{i}": a for i, a in enumerate(args)}, **kw}
    return eval(f"lambda {params}: check({call})", scope)


def measure(rows: list, batches: int, batch: int, rounds: int) -> dict:
    """Times each row in `rounds` interleaved rounds (so that a noisy
    neighbour on a shared machine hits every row alike); returns all
    per-batch samples by row name."""
    samples: dict = {name: [] for name, _ in rows}
    per_round = max(batches // rounds, 1)
    for _ in range(rounds):
        for name, fn in rows:
            samples[name] += time_batches(fn, per_round, batch)
    return samples


def report(name: str, samples: list[float]) -> float:
    med = statistics.median(samples)
    qs = statistics.quantiles(samples, n=10)
    print(f"  {name:<48} median {med:6.0f} ns/call   (p10 {qs[0]:.0f}, p90 {qs[-1]:.0f})")
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "bench.writ"
        src.write_text(policy(args.rules))
        bundle = Path(tmp) / "bench.wbundle"
        t0 = time.perf_counter()
        data = writ.compile(src, bundle)
        compile_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        engine = writ.load(bundle)
        load_ms = (time.perf_counter() - t0) * 1000
        assert engine.rules == args.rules, engine.rules
        one = Path(tmp) / "one.writ"
        one.write_text('policy "one" {\n  default deny\n}\n\nrule a: allow "tool:call" on search\n')
        floor = writ.load(one)
        audited = writ.load(bundle, audit=Path(tmp) / "audit.jsonl")

        print(f"writ {writ.__version__}, Python {platform.python_version()} ({sys.executable})")
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
        print(
            f"policy: {args.rules} rules, bundle {len(data)} bytes, "
            f"compiled in {compile_ms:.0f} ms, loaded in {load_ms:.1f} ms"
        )
        print(f"{args.batches} batches of {args.batch} calls per row, in {args.rounds} interleaved rounds:")

        rows = []
        for name, a, kw, want in shapes():
            got = engine.check(*a, **kw).decision
            assert got == want, (name, got, want)
            fn = caller(engine.check, a, kw)
            for _ in range(2000):  # warm up (rules are decoded on first use)
                fn()
            rows.append((f"{name} ({want})", fn))
        assert floor.check("bot", "tool:call", "search").allowed
        rows.append(("floor: a 1-rule policy, exact rule (allow)", caller(floor.check, ("bot", "tool:call", "search"), {})))
        rows.append(("exact rule, audited to JSON Lines (allow)", caller(audited.check, ("agent-0", "tool:call", "tool_0"), {})))

        def noop(agent, action, target=None):
            return None

        rows.append(("(reference: a no-op Python function, 3 args)", lambda: noop("a", "b", "c")))
        gc.disable()
        try:
            samples = measure(rows, args.batches, args.batch, args.rounds)
        finally:
            gc.enable()
            audited.close()
        for name, _ in rows:
            report(name, samples[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
