//! Building the delegation graph from a policy set.
//!
//! Nodes are the declared agents and roles, plus every name a delegation
//! points at without declaring it, plus one `any agent` node for rules that
//! let every agent delegate. Edges are permitted delegations, from:
//! - `delegates` lists of agents and roles;
//! - allow and approve rules on `agent:delegate`: sources from the rule's
//!   principals (`for agents/roles/tiers/tags`, MeshGuard's `from_agent` /
//!   `from_agent_role`), targets from `on`, `allowed_targets` and
//!   `allowed_target_roles` (a glob target reaches every declared name it
//!   matches; no target at all reaches every declared agent and role);
//! - allow and approve rules on `handoff:<Agent Name>` (the Agents SDK's
//!   handoffs), the target being the name after `handoff:`.
//!
//! The graph over-approximates: a rule's condition is kept on its edge as
//! text, not evaluated, so a path in the graph is a chain that *may* be
//! permitted. Deny rules remove nothing here; the evaluator enforces them.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};
use writ_diagnostics::Span;
use writ_ir::{AgentId, Condition, Effect, Field, PolicySet, Rule, RuleId, Subject, Tier, Value};

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Agent,
    Role,
    /// Named by a delegation but declared nowhere.
    Undeclared,
    /// Every agent: the source of rules that do not name who may delegate.
    Anyone,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    /// The declaration; for undeclared names, the first mention.
    pub span: Option<Span>,
    pub agent: Option<AgentId>,
    /// For agents: their declared roles; for roles: the role itself.
    pub roles: Vec<String>,
    pub tier: Option<Tier>,
    pub tags: Vec<String>,
}

/// Where an edge comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EdgeSource {
    /// An entry in an agent's or role's `delegates` list.
    Delegates,
    /// An allow or approve rule on `agent:delegate`.
    Rule { rule: RuleId, name: String },
    /// An allow or approve rule on `handoff:<name>`.
    Handoff { rule: RuleId, name: String },
}

#[derive(Clone, Debug)]
pub struct Edge {
    pub source: EdgeSource,
    /// Where the delegation is written: the list entry, the target or the rule.
    pub span: Span,
    /// The rule's condition and constraints, as text; `None`: unconditional.
    pub condition: Option<String>,
    /// True when the rule decides `approve`: the hop needs a human.
    pub approve: bool,
}

impl Edge {
    /// A short label: `delegates`, or the rule's name, with its condition.
    #[must_use]
    pub fn label(&self) -> String {
        let base = match &self.source {
            EdgeSource::Delegates => "delegates".to_owned(),
            EdgeSource::Rule { name, .. } => format!("rule {name}"),
            EdgeSource::Handoff { name, .. } => format!("handoff rule {name}"),
        };
        let base = if self.approve {
            format!("{base} (approval)")
        } else {
            base
        };
        match &self.condition {
            Some(c) => format!("{base} when {c}"),
            None => base,
        }
    }
}

/// The delegation graph of a policy set.
#[derive(Debug, Default)]
pub struct Graph {
    pub graph: DiGraph<Node, Edge>,
    index: HashMap<String, NodeIndex>,
    anyone: Option<NodeIndex>,
    /// The `delegates` ceilings bounding each node.
    bounds: HashMap<NodeIndex, Vec<Vec<String>>>,
}

impl Graph {
    /// The node for a name, if there is one.
    #[must_use]
    pub fn node(&self, name: &str) -> Option<NodeIndex> {
        self.index.get(name).copied()
    }

    /// The `any agent` node, when some rule lets every agent delegate.
    #[must_use]
    pub fn anyone(&self) -> Option<NodeIndex> {
        self.anyone
    }

    /// True when `from`'s `delegates` ceilings (if any) admit `to`.
    #[must_use]
    pub fn ceiling_admits(&self, from: NodeIndex, to: NodeIndex) -> bool {
        fits(self, self.bounds.get(&from), to)
    }

    /// Names of the declared agents and roles (for did-you-mean).
    #[must_use]
    pub fn declared_names(&self) -> Vec<&str> {
        self.graph
            .node_weights()
            .filter(|n| matches!(n.kind, NodeKind::Agent | NodeKind::Role))
            .map(|n| n.name.as_str())
            .collect()
    }

    fn intern(&mut self, name: &str, span: Span) -> NodeIndex {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.graph.add_node(Node {
            name: name.to_owned(),
            kind: NodeKind::Undeclared,
            span: Some(span),
            agent: None,
            roles: Vec::new(),
            tier: None,
            tags: Vec::new(),
        });
        self.index.insert(name.to_owned(), i);
        i
    }

    fn anyone_node(&mut self) -> NodeIndex {
        if let Some(i) = self.anyone {
            return i;
        }
        let i = self.graph.add_node(Node {
            name: "any agent".to_owned(),
            kind: NodeKind::Anyone,
            span: None,
            agent: None,
            roles: Vec::new(),
            tier: None,
            tags: Vec::new(),
        });
        self.anyone = Some(i);
        i
    }
}

/// Builds the graph.
#[must_use]
pub fn build(set: &PolicySet) -> Graph {
    let mut g = Graph::default();
    // Declared agents first, then roles (an agent and a role of the same
    // name share the agent's node).
    for subject in [Subject::Agent, Subject::Role] {
        for a in set.agents.iter().filter(|a| a.subject == subject) {
            if let Some(&i) = g.index.get(&a.name.value) {
                if let Some(n) = g.graph.node_weight_mut(i) {
                    n.roles.push(a.name.value.clone());
                }
                continue;
            }
            let (kind, roles) = match subject {
                Subject::Role => (NodeKind::Role, vec![a.name.value.clone()]),
                _ => (
                    NodeKind::Agent,
                    a.roles.iter().map(|r| r.value.clone()).collect(),
                ),
            };
            let i = g.graph.add_node(Node {
                name: a.name.value.clone(),
                kind,
                span: Some(a.name.span),
                agent: Some(a.id),
                roles,
                tier: a.tier.as_ref().map(|t| t.value),
                tags: a.tags.iter().map(|t| t.value.clone()).collect(),
            });
            g.index.insert(a.name.value.clone(), i);
        }
    }
    let declared: Vec<NodeIndex> = g.graph.node_indices().collect();

    for a in set
        .agents
        .iter()
        .filter(|a| matches!(a.subject, Subject::Agent | Subject::Role))
    {
        let Some(from) = g.node(&a.name.value) else {
            continue;
        };
        for d in &a.delegates {
            let to = g.intern(&d.value, d.span);
            g.graph.add_edge(
                from,
                to,
                Edge {
                    source: EdgeSource::Delegates,
                    span: d.span,
                    condition: None,
                    approve: false,
                },
            );
        }
    }

    let bounds = ceilings(set, &g);
    g.bounds.clone_from(&bounds);
    for rule in &set.rules {
        if rule.effect.value == Effect::Deny {
            continue;
        }
        let delegates = rule.actions.iter().any(|p| p.is_match("agent:delegate"));
        let handoffs: Vec<&str> = rule
            .actions
            .iter()
            .filter_map(|p| p.as_str().strip_prefix("handoff:"))
            .filter(|name| !name.is_empty() && !name.contains(['*', '?', '[', '{']))
            .collect();
        if !delegates && handoffs.is_empty() {
            continue;
        }
        let sources = sources(&mut g, rule, &declared);
        let condition = condition_text(rule);
        let approve = rule.effect.value == Effect::Approve;
        if delegates {
            let targets = targets(&mut g, rule, &declared);
            for &(to, span) in &targets {
                for &from in &sources {
                    if from == to || !fits(&g, bounds.get(&from), to) {
                        continue;
                    }
                    g.graph.add_edge(
                        from,
                        to,
                        Edge {
                            source: EdgeSource::Rule {
                                rule: rule.id,
                                name: rule.name.value.clone(),
                            },
                            span,
                            condition: condition.clone(),
                            approve,
                        },
                    );
                }
            }
        }
        for name in handoffs {
            let to = g.intern(name, rule.span);
            for &from in &sources {
                if from == to || !fits(&g, bounds.get(&from), to) {
                    continue;
                }
                g.graph.add_edge(
                    from,
                    to,
                    Edge {
                        source: EdgeSource::Handoff {
                            rule: rule.id,
                            name: rule.name.value.clone(),
                        },
                        span: rule.span,
                        condition: condition.clone(),
                        approve,
                    },
                );
            }
        }
    }
    g
}

/// Who may delegate under a rule: the agents it names; else the declared
/// agents holding its roles (and the declared roles themselves), narrowed
/// by its tiers and tags; nobody named at all: any agent.
fn sources(g: &mut Graph, rule: &Rule, declared: &[NodeIndex]) -> Vec<NodeIndex> {
    let scope = &rule.scope;
    if scope.is_everyone() {
        return vec![g.anyone_node()];
    }
    let mut out = Vec::new();
    if !scope.agents.is_empty() {
        for a in &scope.agents {
            out.push(g.intern(&a.value, a.span));
        }
        return out;
    }
    let roles: Vec<&str> = scope.roles.iter().map(|r| r.value.as_str()).collect();
    let tiers: Vec<Tier> = scope.tiers.iter().map(|t| t.value).collect();
    let tags: Vec<&str> = scope.tags.iter().map(|t| t.value.as_str()).collect();
    for &i in declared {
        let Some(n) = g.graph.node_weight(i) else {
            continue;
        };
        let role_ok = roles.is_empty() || n.roles.iter().any(|r| roles.contains(&r.as_str()));
        let tier_ok = tiers.is_empty() || n.tier.is_some_and(|t| tiers.contains(&t));
        let tag_ok = tags.is_empty() || n.tags.iter().any(|t| tags.contains(&t.as_str()));
        let kind_ok = n.kind == NodeKind::Agent
            || (n.kind == NodeKind::Role && tiers.is_empty() && tags.is_empty());
        if kind_ok && role_ok && tier_ok && tag_ok {
            out.push(i);
        }
    }
    // A role that no declared agent or role entry holds still names who
    // may delegate (a MeshGuard `from_agent_role` in a file of rules only).
    if tiers.is_empty() && tags.is_empty() {
        for r in &scope.roles {
            let held = declared.iter().any(|&i| {
                g.graph
                    .node_weight(i)
                    .is_some_and(|n| n.roles.contains(&r.value))
            });
            if !held {
                out.push(g.intern(&r.value, r.span));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The `delegates` ceilings that bound a node: its own list and those of
/// its declared roles. A rule edge must fit every one of them.
fn ceilings(set: &PolicySet, g: &Graph) -> HashMap<NodeIndex, Vec<Vec<String>>> {
    let mut by_agent: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    let mut by_role: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    for a in set.agents.iter().filter(|a| !a.delegates.is_empty()) {
        let list: Vec<String> = a.delegates.iter().map(|d| d.value.clone()).collect();
        match a.subject {
            Subject::Agent => by_agent.entry(&a.name.value).or_default().push(list),
            Subject::Role => by_role.entry(&a.name.value).or_default().push(list),
            Subject::Everyone => {}
        }
    }
    let mut out: HashMap<NodeIndex, Vec<Vec<String>>> = HashMap::new();
    for i in g.graph.node_indices() {
        let Some(n) = g.graph.node_weight(i) else {
            continue;
        };
        let mut lists = Vec::new();
        if n.kind == NodeKind::Agent {
            lists.extend(by_agent.get(n.name.as_str()).cloned().unwrap_or_default());
        }
        for r in &n.roles {
            lists.extend(by_role.get(r.as_str()).cloned().unwrap_or_default());
        }
        if !lists.is_empty() {
            out.insert(i, lists);
        }
    }
    out
}

fn fits(g: &Graph, lists: Option<&Vec<Vec<String>>>, to: NodeIndex) -> bool {
    let Some(lists) = lists else { return true };
    let Some(t) = g.graph.node_weight(to) else {
        return false;
    };
    lists
        .iter()
        .all(|l| l.iter().any(|d| *d == t.name || t.roles.contains(d)))
}

/// Where a rule lets its sources delegate to, with the span to blame.
fn targets(g: &mut Graph, rule: &Rule, declared: &[NodeIndex]) -> Vec<(NodeIndex, Span)> {
    let mut out = Vec::new();
    let constrained: Vec<(String, Span)> = rule
        .constraints
        .iter()
        .filter(|c| c.field == Field::Target)
        .flat_map(|c| {
            c.values.iter().filter_map(move |v| match v {
                Value::String(s) => Some((s.clone(), c.span)),
                _ => None,
            })
        })
        .collect();
    if !constrained.is_empty() {
        for (name, span) in constrained {
            // A target pattern that excludes the name leaves no edge.
            if rule.targets.is_empty() || rule.targets.iter().any(|p| p.is_match(&name)) {
                out.push((g.intern(&name, span), span));
            }
        }
        return out;
    }
    if rule.targets.is_empty() {
        for &i in declared {
            out.push((i, rule.span));
        }
        return out;
    }
    for p in &rule.targets {
        if p.is_literal() {
            out.push((g.intern(p.as_str(), p.span), p.span));
        } else {
            for &i in declared {
                if g.graph.node_weight(i).is_some_and(|n| p.is_match(&n.name)) {
                    out.push((i, p.span));
                }
            }
        }
    }
    out
}

/// The rule's condition and non-target constraints, as one line of text.
fn condition_text(rule: &Rule) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(c) = &rule.condition {
        parts.push(show(c));
    }
    for c in rule.constraints.iter().filter(|c| c.field != Field::Target) {
        parts.push(format!("{} in {}", c.field, Value::List(c.values.clone())));
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

fn show(c: &Condition) -> String {
    let text = c.to_string();
    if matches!(c, Condition::All(_) | Condition::Any(_)) {
        text.strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .map_or(text.clone(), str::to_owned)
    } else {
        text
    }
}
