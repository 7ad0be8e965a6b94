"""MeshGuard's own Python client (meshguard==0.1.2, from PyPI) against
`writ serve`, serving the MeshGuard seed policies unchanged: every flow of
the seeds and of the client's API. The client is the one its users run;
nothing here imitates it."""

import http.server
import json
import threading

import meshguard
import pytest
from meshguard import (
    AuthenticationError,
    MeshGuardClient,
    MeshGuardError,
    PolicyDeniedError,
    RateLimitError,
)

from conftest import ADMIN

OPENAI_POLICY = "openai-support-agent-policy"


def admin(server) -> MeshGuardClient:
    return MeshGuardClient(gateway_url=server.url, admin_token=ADMIN)


def support_agent(server, tags=("openai", "support")):
    """A registered agent of the openai-support policy, and its client."""
    created = admin(server).create_agent("support-bot", trust_tier="verified", tags=list(tags))
    assert created["id"].startswith("agent_") and created["token"], created
    assert created["name"] == "support-bot" and created["trustTier"] == "verified"
    return created, MeshGuardClient(gateway_url=server.url, agent_token=created["token"])


def test_health_and_is_healthy(serve):
    s = serve()
    h = MeshGuardClient(gateway_url=s.url).health()
    assert h["status"] == "healthy" and h["mode"] == "enforce" and h["version"]
    assert MeshGuardClient(gateway_url=s.url).is_healthy()
    assert not MeshGuardClient(gateway_url="http://127.0.0.1:1").is_healthy()


def test_check_allows_and_denies_with_policy_rule_and_reason(serve):
    s = serve()
    _, agent = support_agent(s)
    allowed = agent.check("read:customer_data")
    assert allowed.allowed and allowed.decision == "allow"
    assert allowed.policy == OPENAI_POLICY
    denied = agent.check("execute:computer_use")
    assert not denied.allowed and denied.decision == "deny"
    assert denied.policy == OPENAI_POLICY
    assert denied.rule and denied.rule != "default-deny"
    assert denied.reason == "Computer use requires explicit admin approval"
    # Nothing allows it: the support-agents seed's catch-all denies.
    nothing = agent.check("delete:everything")
    assert not nothing.allowed and nothing.policy == "Support Agent Governance"
    assert nothing.rule == "deny_any" and nothing.reason == "Action not explicitly authorized by policy"


def test_resource_and_tags_decide(serve):
    s = serve()
    # Not tagged for the openai-support policy: it does not apply.
    _, other = support_agent(s, tags=("billing",))
    assert not other.check("read:customer_data").allowed
    _, tagged = support_agent(s)
    assert tagged.check("read:customer_data", resource="customer/42").allowed


def test_enforce_raises_policy_denied_error(serve):
    s = serve()
    _, agent = support_agent(s)
    assert agent.enforce("read:web_search").allowed
    with pytest.raises(PolicyDeniedError) as e:
        agent.enforce("execute:computer_use")
    assert e.value.action == "execute:computer_use"
    assert e.value.policy == OPENAI_POLICY
    assert e.value.reason == "Computer use requires explicit admin approval"


def test_govern_guards_a_block(serve):
    s = serve()
    _, agent = support_agent(s)
    ran = []
    with agent.govern("read:order_data") as decision:
        ran.append(decision.policy)
    assert ran == [OPENAI_POLICY]
    with pytest.raises(PolicyDeniedError):
        with agent.govern("execute:computer_use"):
            ran.append("must not run")
    assert ran == [OPENAI_POLICY]


def test_rate_limit_error_when_a_limit_is_hit(serve):
    s = serve()
    # The support-agents seed: tier1 tokens (prefix tok_support_t1_) may
    # search the web 30 times an hour.
    agent = MeshGuardClient(gateway_url=s.url, agent_token="tok_support_t1_abc123")
    for i in range(30):
        assert agent.check("web_search:execute").allowed, i
    with pytest.raises(RateLimitError):
        agent.check("web_search:execute")
    # Another tier1 token has its own count.
    other = MeshGuardClient(gateway_url=s.url, agent_token="tok_support_t1_other")
    assert other.check("web_search:execute").allowed


def test_bad_and_revoked_tokens_raise_authentication_error(serve):
    s = serve()
    for token in ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad", None]:
        c = MeshGuardClient(gateway_url=s.url, agent_token=token)
        with pytest.raises(AuthenticationError):
            c.check("read:customer_data")
    created, agent = support_agent(s)
    assert agent.check("read:customer_data").allowed
    admin(s).revoke_agent(created["id"])
    with pytest.raises(AuthenticationError):
        agent.check("read:customer_data")
    # A wrong admin token is an authentication error too, not a denial.
    with pytest.raises(AuthenticationError):
        MeshGuardClient(gateway_url=s.url, admin_token="wrong-admin-token-000").list_agents()


def test_agents_are_created_listed_and_revoked(serve):
    s = serve()
    a = admin(s)
    first = a.create_agent("alpha", trust_tier="trusted", tags=["openai"])
    second = a.create_agent("beta")
    listed = {x.id: x for x in a.list_agents()}
    assert set(listed) == {first["id"], second["id"]}
    assert listed[first["id"]].trust_tier == "trusted" and listed[first["id"]].tags == ["openai"]
    assert listed[second["id"]].trust_tier == "verified" and listed[second["id"]].tags == []
    a.revoke_agent(first["id"])
    assert [x.id for x in a.list_agents()] == [second["id"]]
    with pytest.raises(MeshGuardError):
        a.revoke_agent("agent_does_not_exist")


def test_policies_are_listed(serve):
    s = serve()
    policies = admin(s).list_policies()
    names = sorted(p["name"] for p in policies)
    assert OPENAI_POLICY in names and "Support Agent Governance" in names, names
    for p in policies:
        assert isinstance(p["id"], str) and p["rules"]
        assert all(isinstance(r["id"], str) for r in p["rules"])


def test_audit_log_lists_decisions_newest_first(serve):
    s = serve()
    created, agent = support_agent(s)
    agent.check("read:customer_data")
    agent.check("execute:computer_use")
    agent.check("read:order_data")
    entries = admin(s).get_audit_log(limit=10)
    assert [e["action"] for e in entries] == ["read:order_data", "execute:computer_use", "read:customer_data"]
    denied = admin(s).get_audit_log(decision="deny")
    assert [e["action"] for e in denied] == ["execute:computer_use"]
    e = denied[0]
    assert isinstance(e["id"], str) and e["decision"] == "deny"
    assert e["agentId"] == created["id"] and e["agentName"] == "support-bot"
    assert e["traceId"] == agent.trace_id and e["reason"]
    assert e["timestamp"].endswith("Z")
    assert len(admin(s).get_audit_log(limit=1)) == 1


class Upstream(http.server.BaseHTTPRequestHandler):
    seen = []

    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Upstream.seen.append((self.command, self.path, self.headers.get("Authorization"), body))
        out = json.dumps({"path": self.path, "method": self.command}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_DELETE = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    Upstream.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_proxied_calls_are_forwarded_when_allowed_and_blocked_when_denied(serve, upstream):
    s = serve(env={"PROXY_TARGET": upstream})
    _, agent = support_agent(s)
    r = agent.get("/customers/42?full=1", action="read:customer_data")
    assert r.status_code == 200 and r.json() == {"path": "/customers/42?full=1", "method": "GET"}
    assert r.headers["X-MeshGuard-Decision"] == "allow"
    assert r.headers["X-MeshGuard-Policy"] == OPENAI_POLICY
    assert r.headers["X-MeshGuard-Trace-Id"] == agent.trace_id
    # The agent's token never reaches the upstream.
    assert Upstream.seen == [("GET", "/customers/42?full=1", None, b"")]
    with pytest.raises(PolicyDeniedError) as e:
        agent.post("/computer", action="execute:computer_use", json={"cmd": "ls"})
    assert e.value.reason == "Computer use requires explicit admin approval"
    assert len(Upstream.seen) == 1, "a denied call must not reach the upstream"


def test_audit_mode_allows_everything_and_records_would_be_denials(serve):
    s = serve(env={"MODE": "audit"})
    _, agent = support_agent(s)
    assert agent.check("execute:computer_use").allowed
    assert MeshGuardClient(gateway_url=s.url).health()["mode"] == "audit"
    denied = admin(s).get_audit_log(decision="deny")
    assert [e["action"] for e in denied] == ["execute:computer_use"]


def test_the_client_package_is_the_real_one():
    # The suite must run against the published client, not a stand-in.
    assert meshguard.__file__.endswith("meshguard/__init__.py")
    assert hasattr(MeshGuardClient, "govern") and hasattr(MeshGuardClient, "get_audit_log")
