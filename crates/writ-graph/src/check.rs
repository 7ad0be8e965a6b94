//! What can be wrong with a delegation graph, found before any agent runs.
//!
//! - E0501 / W0201: a delegation to a name no agent or role declares
//!   (E0501 for `delegates` lists and entry agents, W0201 for rule targets,
//!   which may name agents that another policy declares);
//! - W0202: cycles, each named in full;
//! - W0203: agents no chain from the entry agents reaches;
//! - E0502: chains longer than `max_delegation_depth`;
//! - W0204: privilege escalation: with the ceiling `none`, a hop to an agent
//!   that may take an action the delegator may not, with a witness action.

use std::collections::{HashMap, HashSet, VecDeque};

use fixedbitset::FixedBitSet;
use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use writ_diagnostics::{Code, Diagnostic, Span, did_you_mean};
use writ_ir::{Ceiling, Effect, PolicySet, Rule, Subject};

use crate::build::{EdgeSource, Graph, Node, NodeKind};

/// At most this many escalation warnings are reported one by one; the
/// rest are summed up in one.
pub const MAX_ESCALATIONS: usize = 50;

/// Runs every check.
#[must_use]
pub fn check(set: &PolicySet, g: &Graph) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    undeclared(set, g, &mut out);
    cycles(set, g, &mut out);
    unreachable(set, g, &mut out);
    depth(set, g, &mut out);
    if set.settings.ceiling.value == Ceiling::None {
        out.extend(escalations(set, g).into_iter().map(|e| e.diagnostic));
    }
    out
}

fn name(g: &Graph, i: NodeIndex) -> &str {
    g.graph.node_weight(i).map_or("?", |n| n.name.as_str())
}

fn path_text(g: &Graph, path: &[NodeIndex]) -> String {
    path.iter()
        .map(|&i| match g.graph.node_weight(i) {
            Some(n) if n.kind == NodeKind::Anyone => "(any agent)".to_owned(),
            _ => format!("`{}`", name(g, i)),
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

fn undeclared(set: &PolicySet, g: &Graph, out: &mut Vec<Diagnostic>) {
    let declares = set
        .agents
        .iter()
        .any(|a| matches!(a.subject, Subject::Agent | Subject::Role));
    let names = g.declared_names();
    let help = |missing: &str| match did_you_mean(missing, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => {
            format!("declare it with `agent \"{missing}\" {{ ... }}` (or a role), or fix the name")
        }
    };
    if let Some(entries) = &set.settings.entry_agents {
        for e in &entries.value {
            let kind = g
                .node(&e.value)
                .and_then(|i| g.graph.node_weight(i))
                .map(|n| n.kind);
            match kind {
                Some(NodeKind::Agent) => {}
                Some(NodeKind::Role) => out.push(
                    Diagnostic::new(
                        Code::UnknownDelegate,
                        e.span,
                        format!("entry agent `{}` is a role, not an agent", e.value),
                    )
                    .with_help("list the agents that hold the role instead"),
                ),
                _ => out.push(
                    Diagnostic::new(
                        Code::UnknownDelegate,
                        e.span,
                        format!("entry agent `{}` is not declared", e.value),
                    )
                    .with_help(help(&e.value)),
                ),
            }
        }
    }
    if !declares {
        return;
    }
    let mut seen = HashSet::new();
    for e in g.graph.edge_references() {
        let Some(target) = g.graph.node_weight(e.target()) else {
            continue;
        };
        if target.kind != NodeKind::Undeclared || !seen.insert((e.target(), e.weight().span)) {
            continue;
        }
        // A `delegates` list names agents outright: a name nobody declares
        // is a typo or a missing agent (an error). A rule's targets may name
        // agents another policy declares (a warning).
        let code = if e.weight().source == EdgeSource::Delegates {
            Code::UnknownDelegate
        } else {
            Code::UndeclaredDelegate
        };
        out.push(
            Diagnostic::new(
                code,
                e.weight().span,
                format!(
                    "`{}` may delegate to `{}`, which no agent or role declares",
                    name(g, e.source()),
                    target.name
                ),
            )
            .with_help(help(&target.name)),
        );
    }
}

/// A cycle through `start` inside its strongly connected component.
fn cycle_through(g: &Graph, start: NodeIndex, members: &HashSet<NodeIndex>) -> Vec<NodeIndex> {
    // Breadth-first from `start`'s successors back to `start`: the shortest cycle.
    let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::new();
    for n in g.graph.neighbors_directed(start, Direction::Outgoing) {
        if members.contains(&n) && !prev.contains_key(&n) {
            prev.insert(n, start);
            queue.push_back(n);
        }
    }
    while let Some(n) = queue.pop_front() {
        if n == start {
            break;
        }
        for m in g.graph.neighbors_directed(n, Direction::Outgoing) {
            if members.contains(&m) && !prev.contains_key(&m) {
                prev.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    let mut path = vec![start];
    let mut at = prev.get(&start).copied();
    let mut guard = members.len() + 1;
    while let Some(p) = at {
        if p == start || guard == 0 {
            break;
        }
        path.push(p);
        at = prev.get(&p).copied();
        guard -= 1;
    }
    path.push(start);
    path.reverse();
    path
}

/// The edge to blame for a hop: a `delegates` entry when there is one (it
/// points at the name), else the first rule.
fn edge_between(g: &Graph, a: NodeIndex, b: NodeIndex) -> Option<EdgeIndex> {
    let mut first = None;
    for e in g.graph.edges_connecting(a, b) {
        if e.weight().source == EdgeSource::Delegates {
            return Some(e.id());
        }
        first.get_or_insert(e.id());
    }
    first
}

fn cycles(set: &PolicySet, g: &Graph, out: &mut Vec<Diagnostic>) {
    let help = if set.settings.max_delegation_depth.is_some() {
        "a chain around a cycle can hand work back to an agent that already had it (`max_delegation_depth` bounds how often); remove one delegation if that is not meant"
    } else {
        "a chain around a cycle can hand work back to an agent that already had it; set `max_delegation_depth`, or remove one delegation"
    };
    anyone_cycle(g, help, out);
    let mut sccs = tarjan_scc(&g.graph);
    sccs.sort_by_key(|c| c.iter().min().copied());
    for scc in sccs {
        let cyclic = scc.len() > 1
            || scc
                .first()
                .is_some_and(|&n| g.graph.find_edge(n, n).is_some());
        if !cyclic {
            continue;
        }
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let Some(&start) = scc.iter().min() else {
            continue;
        };
        let path = cycle_through(g, start, &members);
        let spans: Vec<Span> = path
            .windows(2)
            .filter_map(|w| match w {
                [a, b] => edge_between(g, *a, *b)
                    .and_then(|e| g.graph.edge_weight(e))
                    .map(|e| e.span),
                _ => None,
            })
            .collect();
        let Some(&first) = spans.first() else {
            continue;
        };
        let mut d = Diagnostic::new(
            Code::DelegationCycle,
            first,
            format!("delegation cycle: {}", path_text(g, &path)),
        )
        .with_label_message("the cycle starts here");
        for s in spans.iter().skip(1) {
            d = d.with_secondary(*s, "and goes on here");
        }
        if members.len() + 1 > path.len() {
            d = d.with_note(format!(
                "{} agents and roles are on cycles with each other",
                members.len()
            ));
        }
        out.push(d.with_help(help));
    }
}

fn unreachable(set: &PolicySet, g: &Graph, out: &mut Vec<Diagnostic>) {
    let Some(entries) = &set.settings.entry_agents else {
        return;
    };
    // With no declared entry agent (E0501 says so), every agent would be
    // unreachable: one report is enough.
    if !entries.value.iter().any(|e| g.node(&e.value).is_some()) {
        return;
    }
    let mut seen = FixedBitSet::with_capacity(g.graph.node_count());
    let mut queue: VecDeque<NodeIndex> = entries
        .value
        .iter()
        .filter_map(|e| g.node(&e.value))
        .chain(g.anyone())
        .collect();
    for &q in &queue {
        seen.insert(q.index());
    }
    while let Some(n) = queue.pop_front() {
        for m in g.graph.neighbors_directed(n, Direction::Outgoing) {
            if !seen.put(m.index()) {
                queue.push_back(m);
            }
        }
    }
    for i in g.graph.node_indices() {
        let Some(n) = g.graph.node_weight(i) else {
            continue;
        };
        if n.kind == NodeKind::Agent && !seen.contains(i.index()) {
            let entry_names: Vec<String> = entries
                .value
                .iter()
                .map(|e| format!("`{}`", e.value))
                .collect();
            out.push(
                Diagnostic::new(
                    Code::UnreachableAgent,
                    n.span.unwrap_or(entries.span),
                    format!(
                        "no delegation chain from the entry agents ({}) reaches `{}`",
                        entry_names.join(", "),
                        n.name
                    ),
                )
                .with_secondary(entries.span, "entry agents declared here")
                .with_help("add a delegation to it, list it in `entry_agents`, or remove it if it is unused"),
            );
        }
    }
}

fn depth(set: &PolicySet, g: &Graph, out: &mut Vec<Diagnostic>) {
    let Some(max) = &set.settings.max_delegation_depth else {
        return;
    };
    let max_hops = max.value as usize;
    // Longest path over the nodes not on a cycle (cycles are W0202), in
    // topological order of the condensation.
    let sccs = tarjan_scc(&g.graph); // reverse topological order
    let mut on_cycle = FixedBitSet::with_capacity(g.graph.node_count());
    for scc in &sccs {
        let cyclic = scc.len() > 1
            || scc
                .first()
                .is_some_and(|&n| g.graph.find_edge(n, n).is_some());
        if cyclic {
            for n in scc {
                on_cycle.insert(n.index());
            }
        }
    }
    let count = g.graph.node_count();
    let mut longest = vec![0usize; count];
    let mut next: Vec<Option<NodeIndex>> = vec![None; count];
    // Reverse topological order: successors are finished first.
    for scc in &sccs {
        for &n in scc {
            if on_cycle.contains(n.index()) {
                continue;
            }
            for m in g.graph.neighbors_directed(n, Direction::Outgoing) {
                if on_cycle.contains(m.index()) {
                    continue;
                }
                let through = longest.get(m.index()).copied().unwrap_or(0) + 1;
                if let Some(slot) = longest.get_mut(n.index())
                    && through > *slot
                {
                    *slot = through;
                    if let Some(nx) = next.get_mut(n.index()) {
                        *nx = Some(m);
                    }
                }
            }
        }
    }
    let Some((start, &hops)) = longest
        .iter()
        .enumerate()
        .max_by_key(|(i, h)| (**h, usize::MAX - i))
    else {
        return;
    };
    if hops <= max_hops {
        return;
    }
    let mut path = vec![NodeIndex::new(start)];
    let mut at = NodeIndex::new(start);
    while let Some(Some(n)) = next.get(at.index()) {
        path.push(*n);
        at = *n;
    }
    let over = path
        .get(max_hops)
        .copied()
        .zip(path.get(max_hops + 1).copied());
    let span = over
        .and_then(|(a, b)| edge_between(g, a, b))
        .and_then(|e| g.graph.edge_weight(e))
        .map_or(max.span, |e| e.span);
    out.push(
        Diagnostic::new(
            Code::ChainTooLong,
            span,
            format!(
                "the delegation chain {} has {hops} hops, more than max_delegation_depth {}",
                path_text(g, &path),
                max.value
            ),
        )
        .with_label_message(format!("hop {} of the chain", max_hops + 1))
        .with_secondary(max.span, "the maximum is set here")
        .with_help("at runtime this chain is denied at this hop; remove a delegation on the path, or raise `max_delegation_depth`"),
    );
}

/// A privilege escalation found on an edge.
#[derive(Debug, Clone)]
pub struct Escalation {
    pub from: NodeIndex,
    pub to: NodeIndex,
    pub edge: EdgeIndex,
    /// What the delegate may do that the delegator may not, e.g.
    /// `` `tool:call` on `refund` ``.
    pub witness: String,
    pub diagnostic: Diagnostic,
}

/// Whether a rule's principals admit a node (its scope alone; conditions
/// are not evaluated: this is what the node *may* be allowed).
fn admits(rule: &Rule, n: &Node) -> bool {
    let sc = &rule.scope;
    if n.kind == NodeKind::Anyone {
        return sc.is_everyone();
    }
    (sc.agents.is_empty()
        || (n.kind != NodeKind::Role && sc.agents.iter().any(|a| a.value == n.name)))
        && (sc.roles.is_empty() || sc.roles.iter().any(|r| n.roles.contains(&r.value)))
        && (sc.tiers.is_empty()
            || n.tier
                .is_some_and(|t| sc.tiers.iter().any(|x| x.value == t)))
        && (sc.tags.is_empty() || sc.tags.iter().any(|t| n.tags.contains(&t.value)))
}

/// Every action and target a rule allows, as witness requests.
fn witnesses(rule: &Rule) -> Vec<(String, Option<String>)> {
    let targets: Vec<Option<String>> = if rule.targets.is_empty() {
        vec![None]
    } else {
        rule.targets
            .iter()
            .map(|p| Some(p.as_str().to_owned()))
            .collect()
    };
    rule.actions
        .iter()
        .flat_map(|a| {
            targets
                .iter()
                .map(move |t| (a.as_str().to_owned(), t.clone()))
        })
        .collect()
}

/// How much a rule grants: an allow more than an approve (which still
/// needs a human).
fn grant(rule: &Rule) -> u8 {
    match rule.effect.value {
        Effect::Allow => 2,
        Effect::Approve => 1,
        Effect::Deny => 0,
    }
}

/// True when one of `rules` grants at least `level` for the action and
/// target (scopes only; conditions are not evaluated).
fn covered(rules: &[&Rule], level: u8, action: &str, target: Option<&str>) -> bool {
    rules.iter().filter(|r| grant(r) >= level).any(|r| {
        r.actions
            .iter()
            .any(|p| p.is_match(action) || p.as_str() == action)
            && (r.targets.is_empty()
                || target
                    .is_some_and(|t| r.targets.iter().any(|p| p.is_match(t) || p.as_str() == t)))
    })
}

/// Every edge along which the delegate may take an action the delegator
/// may not (checked whatever the ceiling; [`check`] reports them only when
/// the ceiling is `none`).
#[must_use]
pub fn escalations(set: &PolicySet, g: &Graph) -> Vec<Escalation> {
    let allow: Vec<&Rule> = set
        .rules
        .iter()
        .filter(|r| r.effect.value != Effect::Deny)
        .filter(|r| {
            !r.actions
                .iter()
                .all(|p| p.is_match("agent:delegate") || p.as_str().starts_with("handoff:"))
        })
        .collect();
    let count = g.graph.node_count();
    let mut caps: Vec<FixedBitSet> = Vec::with_capacity(count);
    for i in g.graph.node_indices() {
        let mut bits = FixedBitSet::with_capacity(allow.len());
        if let Some(n) = g.graph.node_weight(i) {
            for (k, r) in allow.iter().enumerate() {
                if admits(r, n) {
                    bits.insert(k);
                }
            }
        }
        caps.push(bits);
    }
    let entry_paths = entry_paths(set, g);
    let mut out = Vec::new();
    let mut summarized = 0usize;
    let mut pairs = HashSet::new();
    for e in g.graph.edge_references() {
        let (from, to) = (e.source(), e.target());
        // One finding per delegator and delegate, however many edges join them.
        if pairs.contains(&(from, to)) {
            continue;
        }
        let (Some(cf), Some(ct)) = (caps.get(from.index()), caps.get(to.index())) else {
            continue;
        };
        if ct.is_subset(cf) {
            continue;
        }
        let from_rules: Vec<&Rule> = cf.ones().filter_map(|k| allow.get(k).copied()).collect();
        let found = ct
            .difference(cf)
            .filter_map(|k| allow.get(k))
            .find_map(|r| {
                witnesses(r)
                    .into_iter()
                    .find(|(action, target)| {
                        !covered(&from_rules, grant(r), action, target.as_deref())
                    })
                    .map(|(action, target)| (r, action, target))
            });
        let Some((rule, action, target)) = found else {
            continue;
        };
        pairs.insert((from, to));
        if out.len() >= MAX_ESCALATIONS {
            summarized += 1;
            continue;
        }
        let what = match &target {
            Some(t) => format!("`{action}` on `{t}`"),
            None => format!("`{action}`"),
        };
        let (a, b) = (name(g, from), name(g, to));
        let via = entry_paths
            .get(&from)
            .filter(|p| p.len() > 1)
            .map(|p| {
                let mut full = p.clone();
                full.push(to);
                format!(" Reachable from an entry agent: {}.", path_text(g, &full))
            })
            .unwrap_or_default();
        let d = Diagnostic::new(
            Code::PrivilegeEscalation,
            e.weight().span,
            format!(
                "privilege escalation: `{a}` may not take {what}, but it may delegate to `{b}`, which may (rule `{}`); with the ceiling `none` a chain through `{b}` does it on `{a}`'s behalf.{via}",
                rule.name.value
            ),
        )
        .with_label_message(format!("`{a}` → `{b}`"))
        .with_secondary(rule.span, format!("this rule lets `{b}` take {what}"))
        .with_help("set `ceiling strict` in the policy block so that a chain may only do what every agent in it may, or narrow this delegation (a condition, or a smaller target list)");
        out.push(Escalation {
            from,
            to,
            edge: e.id(),
            witness: what,
            diagnostic: d,
        });
    }
    if summarized > 0
        && let Some(last) = out.last()
    {
        let d = Diagnostic::new(
                Code::PrivilegeEscalation,
                last.diagnostic.span().unwrap_or(Span::file_start(writ_diagnostics::FileId(0))),
                format!("{summarized} more delegations escalate privileges (only the first {MAX_ESCALATIONS} are listed)"),
            )
            .with_help("run `writ graph --format json` to list them all");
        out.push(Escalation {
            diagnostic: d,
            ..last.clone()
        });
    }
    out
}

/// For each node, a shortest path to it from an entry agent (when entry
/// agents are declared), for messages.
fn entry_paths(set: &PolicySet, g: &Graph) -> HashMap<NodeIndex, Vec<NodeIndex>> {
    let mut out: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::new();
    let Some(entries) = &set.settings.entry_agents else {
        return out;
    };
    let mut queue = VecDeque::new();
    for e in &entries.value {
        if let Some(i) = g.node(&e.value) {
            out.insert(i, vec![i]);
            queue.push_back(i);
        }
    }
    while let Some(n) = queue.pop_front() {
        let base = out.get(&n).cloned().unwrap_or_default();
        for m in g.graph.neighbors_directed(n, Direction::Outgoing) {
            if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(m) {
                let mut p = base.clone();
                p.push(m);
                slot.insert(p);
                queue.push_back(m);
            }
        }
    }
    out
}

/// A rule that lets every agent delegate to two agents makes them a cycle:
/// each may hand work to the other. Reported once, naming the rule.
fn anyone_cycle(g: &Graph, help: &str, out: &mut Vec<Diagnostic>) {
    let Some(any) = g.anyone() else { return };
    let mut targets: Vec<(NodeIndex, EdgeIndex)> = Vec::new();
    for e in g.graph.edges_directed(any, Direction::Outgoing) {
        let agent = g
            .graph
            .node_weight(e.target())
            .is_some_and(|n| n.kind == NodeKind::Agent);
        if agent && !targets.iter().any(|(t, _)| *t == e.target()) {
            targets.push((e.target(), e.id()));
        }
    }
    // Two agents whose own `delegates` ceilings let them use the rule
    // towards each other; a bounded search keeps this cheap.
    let window = targets.get(..targets.len().min(64)).unwrap_or(&[]);
    let pair = window.iter().enumerate().find_map(|(i, (a, ea))| {
        window
            .iter()
            .skip(i + 1)
            .find(|(b, _)| g.ceiling_admits(*a, *b) && g.ceiling_admits(*b, *a))
            .map(|(b, _)| (*a, *b, *ea))
    });
    let Some((a, b, ea)) = pair else { return };
    let Some(edge) = g.graph.edge_weight(ea) else {
        return;
    };
    out.push(
        Diagnostic::new(
            Code::DelegationCycle,
            edge.span,
            format!(
                "delegation cycle: any agent may delegate under {}, so `{}` and `{}` can hand work back and forth: {}",
                edge.label(),
                name(g, a),
                name(g, b),
                path_text(g, &[a, b, a])
            ),
        )
        .with_label_message("lets any agent delegate")
        .with_help(help),
    );
}
