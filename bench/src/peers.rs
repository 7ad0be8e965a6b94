//! Peers for the decision benchmark (`benches/peers.rs`): the same workload
//! written for Cedar, regorus (Rego) and casbin-rs.
//!
//! This file is compiled only into that bench (it is included there with
//! `#[path]`), so the peer crates stay dev-dependencies of `writ-bench` and
//! neither `cargo test --workspace` nor the library's clippy builds them.
//!
//! # The workload (identical for every engine)
//!
//! `n` rules, `i in 0..n`, each: allow when the action matches the glob
//! `tool:search_web_<i>:*`, the principal holds role `analyst`, and the
//! context has `amount < 100`. Two requests:
//!
//! - hit: action `tool:search_web_<n-1>:run` (matches only the last rule),
//!   role analyst, amount 50: allowed;
//! - miss: action `tool:unknown:run`, same principal and amount: denied
//!   (no rule matches).
//!
//! Each setup function builds the policies, the engine and whatever a caller
//! keeps between requests (entity stores, compiled programs), checks that
//! the hit is allowed and the miss denied (panicking otherwise, so a wrong
//! setup fails loudly), and returns a [`Peer`] whose `decide` does only the
//! per-request work a real caller does: build that request's input from
//! its action string and amount, and ask the engine.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr as _;

/// One engine, set up for `n` rules.
pub struct Peer {
    /// The peer's name in benchmark ids.
    pub name: &'static str,
    /// `decide(true)` runs the hit request, `decide(false)` the miss;
    /// returns whether the request was allowed.
    pub decide: Box<dyn FnMut(bool) -> bool>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("name", &self.name).finish()
    }
}

/// The action string of the hit request for `n` rules.
#[must_use]
pub fn hit_action(n: usize) -> String {
    format!("tool:search_web_{}:run", n.saturating_sub(1))
}

/// The action string of the miss request.
pub const MISS_ACTION: &str = "tool:unknown:run";

/// The amount both requests carry.
pub const AMOUNT: i64 = 50;

fn action_for(hit: bool, hit_action: &str) -> &str {
    if hit { hit_action } else { MISS_ACTION }
}

/// Panics unless `decide` allows the hit and denies the miss.
fn checked(name: &'static str, mut decide: Box<dyn FnMut(bool) -> bool>) -> Peer {
    assert!(decide(true), "{name}: the hit request must be allowed");
    assert!(!decide(false), "{name}: the miss request must be denied");
    Peer { name, decide }
}

// ---------------------------------------------------------------------------
// Cedar
// ---------------------------------------------------------------------------

/// The Cedar text of rule `i`.
///
/// Cedar matches actions as entities (`action == Action::"x"` or `action in
/// [...]`), never by pattern, so the action string travels in the context
/// and the glob is a `like` on it. The role is Cedar's idiomatic RBAC: the
/// principal `User::"alice"` has the parent `Role::"analyst"` in the entity
/// store and the policy scope says `principal in Role::"analyst"` (this is
/// what Cedar's docs and examples do for roles; a `context.roles.contains`
/// check would also work but puts role membership in every request).
fn cedar_policy_text(i: usize) -> String {
    format!(
        "permit(principal in Role::\"analyst\", action == Action::\"call\", resource)\n  \
         when {{ context.action like \"tool:search_web_{i}:*\" && context.amount < 100 }};\n"
    )
}

/// Everything a Cedar caller keeps between requests besides the policies.
struct CedarCaller {
    authorizer: cedar_policy::Authorizer,
    entities: cedar_policy::Entities,
    user_type: cedar_policy::EntityTypeName,
    action_type: cedar_policy::EntityTypeName,
    tool_type: cedar_policy::EntityTypeName,
}

impl CedarCaller {
    fn new() -> Self {
        use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid};
        let user_type = EntityTypeName::from_str("User").expect("type name");
        let role_type = EntityTypeName::from_str("Role").expect("type name");
        let alice = EntityUid::from_type_name_and_id(user_type.clone(), EntityId::new("alice"));
        let analyst = EntityUid::from_type_name_and_id(role_type, EntityId::new("analyst"));
        let entities = Entities::from_entities(
            [
                Entity::new_no_attrs(alice, HashSet::from([analyst.clone()])),
                Entity::new_no_attrs(analyst, HashSet::new()),
            ],
            None,
        )
        .expect("entities");
        Self {
            authorizer: cedar_policy::Authorizer::new(),
            entities,
            user_type,
            action_type: EntityTypeName::from_str("Action").expect("type name"),
            tool_type: EntityTypeName::from_str("Tool").expect("type name"),
        }
    }

    /// The request a caller builds for each call: principal, action and
    /// resource uids from the agent's and tool's names, and a context
    /// holding the action string and the amount. Built per call (not
    /// prebuilt) because its context changes with every request.
    fn request(&self, action: &str) -> cedar_policy::Request {
        use cedar_policy::{Context, EntityId, EntityUid, Request, RestrictedExpression};
        let tool = action.split(':').nth(1).unwrap_or("");
        let context = Context::from_pairs([
            (
                "action".to_owned(),
                RestrictedExpression::new_string(action.to_owned()),
            ),
            ("amount".to_owned(), RestrictedExpression::new_long(AMOUNT)),
        ])
        .expect("context");
        Request::new(
            EntityUid::from_type_name_and_id(self.user_type.clone(), EntityId::new("alice")),
            EntityUid::from_type_name_and_id(self.action_type.clone(), EntityId::new("call")),
            EntityUid::from_type_name_and_id(self.tool_type.clone(), EntityId::new(tool)),
            context,
            None,
        )
        .expect("request")
    }

    fn allowed(&self, request: &cedar_policy::Request, policies: &cedar_policy::PolicySet) -> bool {
        self.authorizer
            .is_authorized(request, policies, &self.entities)
            .decision()
            == cedar_policy::Decision::Allow
    }
}

/// Cedar: one `PolicySet` with `n` policies. Per decision: build the
/// `Request` (uids + context) and call `Authorizer::is_authorized` against
/// the prebuilt policy set and entity store. Cedar evaluates every policy
/// in the set for each request (it has no index on `like` conditions).
#[must_use]
pub fn cedar(n: usize) -> Peer {
    let mut text = String::with_capacity(n * 140);
    for i in 0..n {
        text.push_str(&cedar_policy_text(i));
    }
    let policies = cedar_policy::PolicySet::from_str(&text).expect("cedar policies parse");
    assert_eq!(policies.policies().count(), n);
    let caller = CedarCaller::new();
    let hit = hit_action(n);
    checked(
        "cedar",
        Box::new(move |is_hit| {
            let request = caller.request(action_for(is_hit, &hit));
            caller.allowed(&request, &policies)
        }),
    )
}

/// Cedar with the policies pre-grouped by the caller: a `HashMap` from the
/// literal prefix before the `*` (`tool:search_web_<i>`) to a `PolicySet`
/// holding that one policy. Per decision: strip the last `:`-segment of the
/// action, look the group up (an empty `PolicySet` when there is none, so
/// Cedar still gives the default deny), build the request and authorize.
/// This is the "policies pre-grouped by action by the caller" pattern; it
/// relies on every glob being `<literal prefix>:*`, which the caller must
/// know.
#[must_use]
pub fn cedar_grouped(n: usize) -> Peer {
    let mut groups: HashMap<String, cedar_policy::PolicySet> = HashMap::with_capacity(n);
    for i in 0..n {
        let policy = cedar_policy::Policy::parse(
            Some(cedar_policy::PolicyId::new(format!("rule{i}"))),
            cedar_policy_text(i),
        )
        .expect("cedar policy parses");
        let set = cedar_policy::PolicySet::from_policies([policy]).expect("policy set");
        groups.insert(format!("tool:search_web_{i}"), set);
    }
    let empty = cedar_policy::PolicySet::new();
    let caller = CedarCaller::new();
    let hit = hit_action(n);
    checked(
        "cedar_grouped",
        Box::new(move |is_hit| {
            let action = action_for(is_hit, &hit);
            let prefix = action.rsplit_once(':').map_or(action, |(p, _)| p);
            let set = groups.get(prefix).unwrap_or(&empty);
            let request = caller.request(action);
            caller.allowed(&request, set)
        }),
    )
}

// ---------------------------------------------------------------------------
// regorus (Rego)
// ---------------------------------------------------------------------------

/// The Rego source of the `n` `allow` rules, as modules of package `bench`
/// holding at most 1,000 rules each: regorus refuses a policy file over
/// 1 MiB or 20,000 lines by default, so a user with many rules splits them
/// into files (raising the limit with `set_policy_length_config` would do
/// too). `glob.match` with `null` delimiters makes `*` match any characters
/// (like writ's and Cedar's `*`); the glob is the first expression of each
/// body so that non-matching rules fail on it.
fn rego_modules(n: usize) -> Vec<String> {
    const PER_FILE: usize = 1_000;
    let mut files = Vec::new();
    let mut s = String::from("package bench\nimport rego.v1\n\ndefault allow := false\n\n");
    for i in 0..n {
        if i > 0 && i % PER_FILE == 0 {
            files.push(std::mem::replace(
                &mut s,
                String::from("package bench\nimport rego.v1\n\n"),
            ));
        }
        let _ = write!(
            s,
            "allow if {{\n  glob.match(\"tool:search_web_{i}:*\", null, input.action)\n  \"analyst\" in input.roles\n  input.amount < 100\n}}\n\n"
        );
    }
    files.push(s);
    files
}

/// The input a Rego caller builds for each request.
fn rego_input(action: &str) -> regorus::Value {
    let mut input = BTreeMap::new();
    input.insert(regorus::Value::from("action"), regorus::Value::from(action));
    input.insert(
        regorus::Value::from("roles"),
        regorus::Value::from(vec![regorus::Value::from("analyst")]),
    );
    input.insert(regorus::Value::from("amount"), regorus::Value::from(AMOUNT));
    regorus::Value::from(input)
}

/// Size regorus's compiled-glob LRU cache (a process-wide setting, default
/// 128 entries) to hold all `n` globs, up to its maximum of 65,536: with
/// the default, every decision for `n > 128` recompiles every glob. This is
/// the tuning a user with many globs would do.
fn size_glob_cache(n: usize) {
    regorus::cache::configure(regorus::cache::Config {
        regex: 256,
        glob: n.max(128),
    });
}

fn rego_engine(n: usize) -> regorus::Engine {
    size_glob_cache(n);
    let mut engine = regorus::Engine::new();
    for (k, module) in rego_modules(n).into_iter().enumerate() {
        engine
            .add_policy(format!("bench_{k}.rego"), module)
            .expect("rego policy parses");
    }
    engine
}

fn rego_allowed(v: &regorus::Value) -> bool {
    matches!(v, regorus::Value::Bool(true))
}

/// regorus, its fastest public evaluation path: the module compiled once
/// (`Engine::compile_with_entrypoint` then `rvm::Compiler::compile_from_policy`)
/// to a program for the Rego Virtual Machine (RVM, default feature `rvm`),
/// and one `RegoVM` kept by the caller. Per decision: build the input
/// `Value`, `set_input`, `execute` the `data.bench.allow` entry point.
///
/// An RVM program holds at most 65,535 instructions and this workload
/// takes 18 per rule, so past about 3,600 rules the RVM cannot take the
/// policy; this then falls back to [`regorus_interpreter`], and the
/// returned peer's name says so (`regorus_interpreter`).
#[must_use]
pub fn regorus(n: usize) -> Peer {
    let mut engine = rego_engine(n);
    let policy = engine
        .compile_with_entrypoint(&"data.bench.allow".into())
        .expect("rego compiles");
    let program = match regorus::languages::rego::compiler::Compiler::compile_from_policy(
        &policy,
        &["data.bench.allow"],
    ) {
        Ok(program) => program,
        Err(e) if format!("{e:?}").contains("exceeds max instructions") => {
            return regorus_interpreter(n);
        }
        Err(e) => panic!("rvm program compiles: {e:?}"),
    };
    let mut vm = regorus::rvm::vm::RegoVM::new_with_policy(policy);
    vm.load_program(program);
    let hit = hit_action(n);
    checked(
        "regorus",
        Box::new(move |is_hit| {
            vm.set_input(rego_input(action_for(is_hit, &hit)));
            rego_allowed(&vm.execute().expect("rvm executes"))
        }),
    )
}

/// regorus's tree-walking interpreter, the classic API: one `Engine` with
/// the module, kept by the caller. Per decision: `set_input` and
/// `eval_rule("data.bench.allow")`.
#[must_use]
pub fn regorus_interpreter(n: usize) -> Peer {
    let mut engine = rego_engine(n);
    let hit = hit_action(n);
    checked(
        "regorus_interpreter",
        Box::new(move |is_hit| {
            engine.set_input(rego_input(action_for(is_hit, &hit)));
            rego_allowed(
                &engine
                    .eval_rule("data.bench.allow".to_owned())
                    .expect("rego evaluates"),
            )
        }),
    )
}

// ---------------------------------------------------------------------------
// casbin-rs
// ---------------------------------------------------------------------------

/// The casbin model: RBAC with role inheritance (`g = _, _`) and ABAC on a
/// request attribute (`r.amount`, passed as a number). The action pattern
/// uses `keyMatch`, casbin's prefix-`*` matcher: it compares the bytes
/// before the `*` and is the cheapest of casbin's pattern functions
/// (`globMatch` builds a new `globset` matcher on every call). `keyMatch`
/// comes first so that the `&&` chain stops there for non-matching lines.
const CASBIN_MODEL: &str = "\
[request_definition]
r = sub, act, amount

[policy_definition]
p = sub, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = keyMatch(r.act, p.act) && g(r.sub, p.sub) && r.amount < 100
";

/// casbin-rs: the model above, `n` policy lines `p, analyst,
/// tool:search_web_<i>:*` and `g, alice, analyst`, loaded through a
/// `StringAdapter`. Building the `Enforcer` is async in casbin-rs, so the
/// setup blocks on a current-thread tokio runtime; `enforce` itself is
/// sync. Per decision: `enforce(("alice", action, amount))`, which runs
/// casbin's compiled `rhai` matcher once per policy line until one allows.
#[must_use]
pub fn casbin(n: usize) -> Peer {
    use casbin::{CoreApi as _, DefaultModel, Enforcer, StringAdapter};
    let mut lines = String::with_capacity(n * 40 + 32);
    for i in 0..n {
        let _ = writeln!(lines, "p, analyst, tool:search_web_{i}:*");
    }
    lines.push_str("g, alice, analyst\n");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let enforcer = rt.block_on(async {
        let model = DefaultModel::from_str(CASBIN_MODEL)
            .await
            .expect("casbin model");
        Enforcer::new(model, StringAdapter::new(lines))
            .await
            .expect("casbin enforcer")
    });
    let hit = hit_action(n);
    checked(
        "casbin",
        Box::new(move |is_hit| {
            enforcer
                .enforce(("alice", action_for(is_hit, &hit), AMOUNT))
                .expect("casbin enforces")
        }),
    )
}
