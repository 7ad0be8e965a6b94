"""One engine shared by threads: consistent answers, exact limits, the GIL released."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import writ
from writ_testutil import LIMIT_POLICY, NOON, SUPPORT

REQUESTS = [
    (("triage-agent", "tool:call", "lookup_customer"), "allow"),
    (("billing-agent", "tool:call", "refund", {"amount": 500, "currency": "USD"}, None, 0, None, NOON), "deny"),
    (("billing-agent", "tool:call", "delete_customer"), "approve"),
    (("billing-agent", "tool:call", "shell"), "deny"),
    (("triage-agent", "model:use", "gpt-4.1-mini"), "allow"),
    (("tier1-bot", "agent:delegate", "manager", {"labels": ["escalate"], "customer": {"email": "a@example.com"}}), "approve"),
]


def test_eight_threads_get_consistent_results():
    e = writ.load(SUPPORT)
    expected = [(want, e.check(*args).rule) for args, want in REQUESTS]
    barrier = threading.Barrier(8)

    def work(n: int) -> list:
        barrier.wait()
        wrong = []
        for i in range(2000):
            args, want = REQUESTS[(i + n) % len(REQUESTS)]
            d = e.check(*args)
            if (d.decision, d.rule) != expected[(i + n) % len(REQUESTS)]:
                wrong.append((args, d))
        return wrong

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    assert [len(r) for r in results] == [0] * 8


def test_a_limit_is_exact_under_threads(tmp_path):
    p = tmp_path / "limits.writ"
    p.write_text(LIMIT_POLICY)
    e = writ.load(p)
    barrier = threading.Barrier(8)

    def work(_: int) -> int:
        barrier.wait()
        return sum(e.check("bot", "tool:call", "search").allowed for _ in range(200))

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(work, range(8))) == 3


def test_checks_do_not_hold_the_gil():
    """While threads check in a loop, a pure-Python thread keeps making progress."""
    e = writ.load(SUPPORT)
    stop = threading.Event()
    ticks = [0]

    def spin() -> None:
        while not stop.is_set():
            ticks[0] += 1

    def check_loop() -> None:
        while not stop.is_set():
            e.check("triage-agent", "tool:call", "lookup_customer")

    threads = [threading.Thread(target=spin)] + [threading.Thread(target=check_loop) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert ticks[0] > 1000


def test_reload_while_checking_never_half_loads(tmp_path):
    p = tmp_path / "p.writ"
    allow = 'policy "p" {\n  default deny\n}\n\nrule a: allow "tool:call" on search\n'
    deny = allow.replace("allow", "deny")
    p.write_text(allow)
    e = writ.load(p)
    stop = threading.Event()
    seen: set = set()

    def check_loop() -> None:
        while not stop.is_set():
            d = e.check("bot", "tool:call", "search")
            seen.add((d.decision, d.rule))

    threads = [threading.Thread(target=check_loop) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        p.write_text(deny if i % 2 == 0 else allow)
        e.reload()
    stop.set()
    for t in threads:
        t.join()
    assert seen <= {("allow", "a"), ("deny", "a")}
