#!/usr/bin/env python3
"""Writes the compile-time workloads of issue 22 as .writ and as YAML.

    python3 bench/compile_workloads.py OUT_DIR [N ...]

For each N (default 10000 20000 40000 100000) it writes
OUT_DIR/agents-N.{writ,yaml} and OUT_DIR/globs-N.{writ,yaml}:

- agents: N/10 agents with 10 rules each, half scoped by agent, half by
  the agent's role, over a few shared actions and targets;
- globs: every glob shape in turn (exact, `prefix*`, `*suffix`, inner
  `a*b<i>`, `q?x<i>`, classes `[ab]c<i>`, alternations `{get,put}_<i>`,
  as actions and as targets, and host names matched in any case; YAML has
  no `on hosts`, so there the host rules are case-sensitive targets).

Time them with `writ check FILE` and `writ compile FILE -o OUT`; with
today's automata, the glob workload needs WRIT_AUTOMATA_BUDGET raised
(e.g. 64GiB) past 5,000 rules, else E0209 stops the check before the lints.
"""

import os
import sys

TOOLS = ["lookup_order", "refund", "search_*", "*_report", "send_email"]


def agents(n):
    """(writ, yaml) texts of the per-agent workload with n rules."""
    w = ['policy "agents" {\n  combine first-match\n  default deny\n}\n']
    y = ["writ: 1\npolicy:\n  name: agents\n  combining: first-match\n  default: deny\n"]
    y.append("agents:\n")
    for a in range(n // 10):
        w.append(f'agent "agent-{a}" {{\n  roles [role-{a}]\n}}\n')
        y.append(f"  agent-{a}:\n    roles: [role-{a}]\n")
    y.append("rules:\n")
    for a in range(n // 10):
        for j in range(10):
            effect = ["allow", "deny", "approve"][j % 3]
            tool = TOOLS[j % len(TOOLS)]
            action = "tool:call" if j % 4 else "db:read"
            if j < 5:
                scope, ykey = f"agents [agent-{a}]", f"agents: [agent-{a}]"
            else:
                scope, ykey = f"roles [role-{a}]", f"roles: [role-{a}]"
            w.append(f'rule r{a}_{j}: {effect} "{action}" on "{tool}"\n  for {scope}\n')
            y.append(
                f"  - name: r{a}_{j}\n    effect: {effect}\n    action: \"{action}\"\n"
                f"    target: \"{tool}\"\n    principals: {{ {ykey} }}\n"
            )
    return "\n".join(w), "".join(y)


def glob_rule(i):
    """(action, target, hosts) of the i-th rule of the glob workload: the
    shape's pattern is the target of `tool:call` on even rounds of eight
    rules and the action (with no target) on odd ones."""
    shape = i % 8
    pattern = [
        f"exact_{i}",
        f"pre_{i}_*",
        f"*_suf_{i}",
        f"a*b{i}",
        f"q?x{i}",
        f"[ab]c{i}",
        f"{{get,put}}_{i}",
        f"*.Host{i}.Example.com",
    ][shape]
    if shape == 7:
        return "net:connect", pattern, True
    if (i // 8) % 2 == 0:
        return "tool:call", pattern, False
    return pattern, "", False


def globs(n):
    """(writ, yaml) texts of the glob workload with n rules."""
    w = ['policy "globs" {\n  combine first-match\n  default deny\n}\n']
    y = ["writ: 1\npolicy:\n  name: globs\n  combining: first-match\n  default: deny\nrules:\n"]
    for i in range(n):
        effect = ["allow", "deny", "approve"][i % 3]
        action, target, hosts = glob_rule(i)
        on = ""
        if target:
            on = f' on {"hosts " if hosts else ""}"{target}"'
        w.append(f'rule g{i}: {effect} "{action}"{on}\n')
        y.append(f'  - name: g{i}\n    effect: {effect}\n    action: "{action}"\n')
        if target:
            y.append(f'    target: "{target}"\n')
    return "\n".join(w), "".join(y)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    sizes = [int(a) for a in sys.argv[2:]] or [10000, 20000, 40000, 100000]
    os.makedirs(out, exist_ok=True)
    for n in sizes:
        for name, make in (("agents", agents), ("globs", globs)):
            writ, yaml = make(n)
            for ext, text in (("writ", writ), ("yaml", yaml)):
                with open(os.path.join(out, f"{name}-{n}.{ext}"), "w") as f:
                    f.write(text)


if __name__ == "__main__":
    main()
