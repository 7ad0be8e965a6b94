//! The reference evaluator: a plain tree walk over the IR.
//!
//! It is written to be obviously correct rather than fast: every request
//! looks at every rule in order. It is the oracle the compiled automaton is
//! tested against, so keep it simple and keep it.
//!
//! Evaluation fails closed: a request the evaluator cannot judge (unknown
//! token, value of the wrong kind, missing context) never becomes an allow.

mod evaluate;
mod explain;
mod limiter;
mod request;

pub use evaluate::{Evaluator, ScopeList};
pub use explain::{Explanation, Outcome, RuleStep, Step, Written};
pub use limiter::Limiter;
pub use request::Decision;
pub use writ_runtime::{Request, RequestError};
