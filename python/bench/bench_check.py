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
    out = [
        'policy "bench" {',
        "  combine first-match",
        "  default deny risk medium",
        '  timezone "UTC"',
        "}",
        "",
    ]
    for a in range(AGENTS):
        out += [f'agent "agent-{a}" {{', f"  roles [team-{a % 10}]", "  tier verified", "}", ""]
    for i in range(rules):
        kind = i % 6
        a = i % AGENTS
        if kind == 0:  # exact action, exact target, one agent
            out += [f'rule r{i}: allow "tool:call" on "tool_{i}"', f"  for agents [agent-{a}]", "  risk low"]
        elif kind == 1:  # prefix action, condition on a number
            out += [f'rule r{i}: deny "api{i}:*"', f"  when amount > {i}", f'  because "amount over {i}"']
        elif kind == 2:  # suffix action, host glob target, role scope
            out += [
                f'rule r{i}: allow "*_read{i}" on "db-{i}.*.example.com"',
                f"  for roles [team-{i % 10}]",
            ]
        elif kind == 3:  # glob with ? and a class
            out += [f'rule r{i}: allow "job:run?{i}[ab]"', '  when env in [prod, staging]']
        elif kind == 4:  # approvals with a compound condition
            out += [
                f'rule r{i}: approve "tool:call" on "pay_{i}"',
                "  risk high",
                "  when amount > 100 and currency in [USD, EUR]",
                '  because "payments over 100 need a human"',
            ]
        else:  # a limit and a nested context path
            out += [
                f'rule r{i}: allow "net:connect" on "host-{i}.example.com"',
                f"  when ticket.priority in [high, urgent]",
                "  limit 1000000 per second",
            ]
        out.append("")
    return "\n".join(out)


def shapes() -> list[tuple[str, tuple, dict]]:
    return [
        ("exact rule, no context (allow)", ("agent-0", "tool:call", "tool_0"), {}),
        (
            "condition on context (approve)",
            ("agent-4", "tool:call", "pay_4"),
            {"context": {"amount": 150, "currency": "USD"}},
        ),
        ("no rule matches (default deny)", ("agent-7", "nothing:here", "x"), {}),
        (
            "nested context, 6 keys, trace id (allow)",
            ("agent-5", "net:connect", "host-5.example.com"),
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
        ),
        ("explicit time as RFC 3339 str", ("agent-0", "tool:call", "tool_0"), {"at": "2025-01-15T12:00:00Z"}),
    ]


def time_batches(fn, batches: int, batch: int) -> list[float]:
    per_call = []
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        per_call.append((time.perf_counter_ns() - t0) / batch)
    return per_call


def report(name: str, samples: list[float]) -> float:
    med = statistics.median(samples)
    qs = statistics.quantiles(samples, n=10)
    print(f"  {name:<44} median {med:7.0f} ns/call   (p10 {qs[0]:.0f}, p90 {qs[-1]:.0f})")
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--batch", type=int, default=1000)
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

        print(f"writ {writ.__version__}, Python {platform.python_version()} ({sys.executable})")
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
        print(
            f"policy: {args.rules} rules, bundle {len(data)} bytes, "
            f"compiled in {compile_ms:.0f} ms, loaded in {load_ms:.1f} ms"
        )
        print(f"{args.batches} batches of {args.batch} calls each:")

        expected = {
            "exact rule, no context (allow)": "allow",
            "condition on context (approve)": "approve",
            "no rule matches (default deny)": "deny",
            "nested context, 6 keys, trace id (allow)": "allow",
            "explicit time as RFC 3339 str": "allow",
        }
        gc.disable()
        try:
            check = engine.check
            for name, a, kw in shapes():
                got = check(*a, **kw).decision
                assert got == expected[name], (name, got)
                for _ in range(2000):  # warm up (rules are decoded on first use)
                    check(*a, **kw)
                if kw:
                    samples = time_batches(lambda: check(*a, **kw), args.batches, args.batch)
                else:
                    agent, action, target = a
                    samples = time_batches(lambda: check(agent, action, target), args.batches, args.batch)
                report(name, samples)

            # For scale: the cost of calling a trivial Python-level function.
            def noop(agent, action, target=None):
                return None

            report("(reference: a no-op Python function call)", time_batches(lambda: noop("a", "b", "c"), args.batches, args.batch))
        finally:
            gc.enable()

        with writ.load(bundle, audit=Path(tmp) / "audit.jsonl") as audited:
            check = audited.check
            for _ in range(2000):
                check("agent-0", "tool:call", "tool_0")
            report(
                "exact rule, audited to JSON Lines",
                time_batches(lambda: check("agent-0", "tool:call", "tool_0"), max(args.batches // 3, 20), args.batch),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
