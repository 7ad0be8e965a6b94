//! The delegation graph: which agents may hand work to which.
//!
//! [`build`] turns a policy set into a petgraph graph of agents and roles
//! whose edges are permitted delegations, each with its span and its
//! conditions; [`check`] finds what is wrong with it (undeclared targets,
//! cycles, unreachable agents, chains past the maximum depth, privilege
//! escalation); [`draw`] prints it as DOT, Mermaid or JSON. The evaluator
//! enforces chains at runtime without this crate (it reads the IR).

mod build;
mod check;
pub mod draw;

pub use build::{Edge, EdgeSource, Graph, Node, NodeKind, build};
pub use check::{Escalation, MAX_ESCALATIONS, check, escalations};
