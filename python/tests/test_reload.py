"""reload() and watch=True: a new policy replaces the old one whole; a broken one never does."""

from __future__ import annotations

import shutil
import time

import pytest

import writ
from writ_testutil import SUPPORT, wait_for, write_atomically

POLICY = """\
policy "p" {
  combine first-match
  default deny
}

rule search: ALLOW "tool:call" on search
"""


def policy(effect: str) -> str:
    return POLICY.replace("ALLOW", effect)


BROKEN = 'policy "p" {\n  default deny\n}\n\nrule search: alow "tool:call" on search\n'


def decision(e: writ.Engine) -> str:
    return e.check("bot", "tool:call", "search").decision


def test_reload_picks_up_an_edit(tmp_path):
    p = tmp_path / "p.writ"
    p.write_text(policy("allow"))
    e = writ.load(p)
    before = e.revision
    assert decision(e) == "allow"
    p.write_text(policy("deny"))
    assert decision(e) == "allow"  # nothing happens until asked
    e.reload()
    assert decision(e) == "deny"
    assert e.revision != before
    assert e.last_reload_error is None


def test_broken_edit_keeps_the_old_policy_and_raises(tmp_path):
    p = tmp_path / "p.writ"
    p.write_text(policy("allow"))
    e = writ.load(p)
    rev = e.revision
    p.write_text(BROKEN)
    with pytest.raises(writ.PolicyError) as err:
        e.reload()
    assert err.value.diagnostics and f"{p}:5:" in err.value.diagnostics[0]
    assert decision(e) == "allow"
    assert e.revision == rev
    assert "still serving the last good policy" in e.last_reload_error
    p.write_text(policy("approve"))
    e.reload()
    assert decision(e) == "approve"
    assert e.last_reload_error is None


def test_deleted_file_keeps_the_old_policy(tmp_path):
    p = tmp_path / "p.writ"
    p.write_text(policy("allow"))
    e = writ.load(p)
    p.unlink()
    with pytest.raises(writ.PolicyError, match="cannot read"):
        e.reload()
    assert decision(e) == "allow"


def test_reload_a_bundle(tmp_path):
    src = tmp_path / "p.writ"
    out = tmp_path / "p.wbundle"
    src.write_text(policy("allow"))
    writ.compile(src, out)
    e = writ.load(out)
    assert decision(e) == "allow"
    src.write_text(policy("deny"))
    writ.compile(src, out)
    e.reload()
    assert decision(e) == "deny"
    out.write_bytes(out.read_bytes()[:-5])
    with pytest.raises(writ.PolicyError):
        e.reload()
    assert decision(e) == "deny"


def test_limits_carry_over_a_reload(tmp_path):
    p = tmp_path / "p.writ"
    p.write_text(POLICY.replace('on search\n', 'on search\n  limit 2 per hour\n').replace("ALLOW", "allow"))
    e = writ.load(p)
    assert [decision(e) for _ in range(2)] == ["allow", "allow"]
    p.write_text(p.read_text().replace('default deny', 'default deny\n  description "v2"'))
    e.reload()
    assert decision(e) == "deny"  # same rule name, same count


def test_watch_picks_up_a_change(tmp_path):
    p = tmp_path / "p.writ"
    p.write_text(policy("allow"))
    with writ.load(p, watch=True) as e:
        assert decision(e) == "allow"
        p.write_text(policy("deny"))
        assert wait_for(lambda: decision(e) == "deny", timeout=10)
        write_atomically(p, policy("approve"))
        assert wait_for(lambda: decision(e) == "approve", timeout=10)


def test_watch_keeps_the_old_policy_on_a_broken_change(tmp_path):
    p = tmp_path / "p.writ"
    p.write_text(policy("allow"))
    with writ.load(p, watch=True) as e:
        p.write_text(BROKEN)
        assert wait_for(lambda: e.last_reload_error is not None, timeout=10)
        assert "E0401" in e.last_reload_error
        assert decision(e) == "allow"
        p.write_text(policy("deny"))
        assert wait_for(lambda: decision(e) == "deny", timeout=10)
        assert e.last_reload_error is None


def test_watch_several_files_in_different_directories(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    agents = tmp_path / "a" / "agents.writ"
    rules = tmp_path / "b" / "rules.writ"
    agents.write_text('agent "bot" {\n  tier verified\n}\n')
    rules.write_text(policy("allow"))
    with writ.load([rules, agents], watch=True) as e:
        assert decision(e) == "allow"
        agents.write_text('agent "bot" {\n  tier verified\n  tools allow [lookup]\n}\n')
        assert wait_for(lambda: decision(e) == "deny", timeout=10)


def test_watch_a_bundle(tmp_path):
    src = tmp_path / "p.writ"
    out = tmp_path / "p.wbundle"
    src.write_text(policy("allow"))
    writ.compile(src, out)
    with writ.load(out, watch=True) as e:
        src.write_text(policy("deny"))
        tmp = tmp_path / "next.wbundle"
        writ.compile(src, tmp)
        tmp.replace(out)
        assert wait_for(lambda: decision(e) == "deny", timeout=10)


def test_watch_on_a_copy_of_an_example(tmp_path):
    p = tmp_path / "support.writ"
    shutil.copy(SUPPORT, p)
    with writ.load(p, watch=True, audit=tmp_path / "audit.jsonl") as e:
        assert e.check("billing-agent", "tool:call", "shell").decision == "deny"
        p.write_text(p.read_text().replace('tools allow ["lookup_*", refund, delete_customer]', 'tools allow ["lookup_*", refund, delete_customer, shell]') + '\nrule shell: allow "tool:call" on shell\n')
        assert wait_for(lambda: e.check("billing-agent", "tool:call", "shell").allowed, timeout=10)
    assert writ.verify_audit(tmp_path / "audit.jsonl")["intact"]


def test_watch_sees_an_edit_that_keeps_the_size(tmp_path):
    p = tmp_path / "p.writ"
    a, b = policy("allow"), policy("deny ")  # the same length
    assert len(a) == len(b)
    p.write_text(a)
    with writ.load(p, watch=True) as e:
        assert decision(e) == "allow"
        p.write_text(b)
        assert wait_for(lambda: decision(e) == "deny", timeout=10)


def test_closing_stops_the_watcher(tmp_path):
    p = tmp_path / "p.writ"
    p.write_text(policy("allow"))
    e = writ.load(p, watch=True)
    rev = e.revision
    e.close()
    p.write_text(policy("deny"))
    time.sleep(0.6)
    assert e.revision == rev  # not reloaded
    with pytest.raises(writ.WritError, match="closed"):
        decision(e)
