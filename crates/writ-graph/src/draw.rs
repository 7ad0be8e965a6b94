//! Drawing the graph: Graphviz DOT, Mermaid, and JSON for tools.
//! Escalating edges (see [`crate::escalations`]) are drawn red and bold
//! with their witness action.

use std::collections::HashMap;
use std::fmt::Write as _;

use petgraph::graph::EdgeIndex;
use petgraph::visit::EdgeRef;

use crate::build::{Graph, NodeKind};
use crate::check::Escalation;

fn kind_word(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Agent => "agent",
        NodeKind::Role => "role",
        NodeKind::Undeclared => "undeclared",
        NodeKind::Anyone => "any agent",
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn witnesses(esc: &[Escalation]) -> HashMap<EdgeIndex, &str> {
    esc.iter().map(|e| (e.edge, e.witness.as_str())).collect()
}

/// Graphviz DOT.
#[must_use]
pub fn dot(g: &Graph, esc: &[Escalation]) -> String {
    let w = witnesses(esc);
    let mut out = String::from(
        "digraph delegation {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    for i in g.graph.node_indices() {
        let Some(n) = g.graph.node_weight(i) else {
            continue;
        };
        let style = match n.kind {
            NodeKind::Agent => "shape=box, style=\"rounded,filled\", fillcolor=\"#e8f0fe\"",
            NodeKind::Role => "shape=ellipse, style=filled, fillcolor=\"#fef7e0\"",
            NodeKind::Undeclared => {
                "shape=box, style=dashed, color=\"#9aa0a6\", fontcolor=\"#5f6368\""
            }
            NodeKind::Anyone => "shape=diamond, style=filled, fillcolor=\"#f1f3f4\"",
        };
        let label = match n.kind {
            NodeKind::Agent | NodeKind::Anyone => n.name.clone(),
            other => format!("{}\\n({})", dot_escape(&n.name), kind_word(other)),
        };
        let _ = writeln!(
            out,
            "  n{} [label=\"{}\", {style}];",
            i.index(),
            if n.kind == NodeKind::Agent || n.kind == NodeKind::Anyone {
                dot_escape(&label)
            } else {
                label
            }
        );
    }
    for e in g.graph.edge_references() {
        let mut label = dot_escape(&e.weight().label());
        let mut style = String::new();
        if let Some(witness) = w.get(&e.id()) {
            label = format!("{label}\\nESCALATES: {}", dot_escape(witness));
            style = ", color=\"#d93025\", fontcolor=\"#d93025\", penwidth=2.5".to_owned();
        } else if e.weight().approve {
            style = ", style=dashed".to_owned();
        }
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{label}\"{style}];",
            e.source().index(),
            e.target().index()
        );
    }
    out.push_str("}\n");
    out
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;").replace('`', "'")
}

/// Mermaid flowchart (renders in GitHub markdown).
#[must_use]
pub fn mermaid(g: &Graph, esc: &[Escalation]) -> String {
    let w = witnesses(esc);
    let mut out = String::from("flowchart LR\n");
    for i in g.graph.node_indices() {
        let Some(n) = g.graph.node_weight(i) else {
            continue;
        };
        let name = mermaid_text(&n.name);
        let shape = match n.kind {
            NodeKind::Agent => format!("n{}[\"{name}\"]", i.index()),
            NodeKind::Role => format!("n{}([\"{name} (role)\"])", i.index()),
            NodeKind::Undeclared => format!("n{}[/\"{name} (undeclared)\"/]", i.index()),
            NodeKind::Anyone => format!("n{}{{\"{name}\"}}", i.index()),
        };
        let _ = writeln!(out, "  {shape}");
    }
    let mut red = Vec::new();
    for (k, e) in g.graph.edge_references().enumerate() {
        let mut label = mermaid_text(&e.weight().label());
        if let Some(witness) = w.get(&e.id()) {
            label = format!("{label} — ESCALATES: {}", mermaid_text(witness));
            red.push(k);
        }
        let arrow = if e.weight().approve { "-.->" } else { "-->" };
        let _ = writeln!(
            out,
            "  n{} {arrow}|\"{label}\"| n{}",
            e.source().index(),
            e.target().index()
        );
    }
    for k in red {
        let _ = writeln!(out, "  linkStyle {k} stroke:#d93025,stroke-width:3px");
    }
    out
}

/// JSON: `{"nodes": [...], "edges": [...]}`, escalations marked.
#[must_use]
pub fn json(g: &Graph, esc: &[Escalation]) -> String {
    let w = witnesses(esc);
    let nodes: Vec<serde_json::Value> = g
        .graph
        .node_indices()
        .filter_map(|i| g.graph.node_weight(i).map(|n| (i, n)))
        .map(|(i, n)| {
            serde_json::json!({
                "id": i.index(),
                "name": n.name,
                "kind": kind_word(n.kind),
                "roles": n.roles,
            })
        })
        .collect();
    let edges: Vec<serde_json::Value> = g
        .graph
        .edge_references()
        .map(|e| {
            let (source, rule) = match &e.weight().source {
                crate::EdgeSource::Delegates => ("delegates", None),
                crate::EdgeSource::Rule { name, .. } => ("rule", Some(name.clone())),
                crate::EdgeSource::Handoff { name, .. } => ("handoff", Some(name.clone())),
            };
            serde_json::json!({
                "from": e.source().index(),
                "to": e.target().index(),
                "source": source,
                "rule": rule,
                "condition": e.weight().condition,
                "approve": e.weight().approve,
                "escalates": w.get(&e.id()),
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes, "edges": edges }))
        .unwrap_or_else(|_| "{}".to_owned())
}
