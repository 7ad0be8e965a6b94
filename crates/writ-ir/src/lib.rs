//! The typed policy IR.
//!
//! Every front end (writ's YAML schema, the MeshGuard, Aegis and Sekuire
//! dialects, and later the writ language) lowers into these types, and
//! everything downstream (the reference evaluator, the delegation graph, the
//! compiler) reads only them. The IR is resolved and total: patterns are
//! compiled, times parsed, enums closed. It carries no serde: it is not a
//! wire format. Every node keeps the span of the source it came from.

mod condition;
mod dump;
pub mod glob;
mod merge;
mod model;
mod pattern;
mod rule_parts;
mod shift;
mod time;
mod value;

pub use condition::{CmpOp, Condition, Field};
pub use dump::dump;
pub use merge::{PartialSettings, PolicyFile, merge};
pub use model::{
    AccessList, Agent, AgentId, AgentLimit, Ceiling, Combining, Constraint, Dialect, Effect,
    Metric, NamedList, Policy, PolicyId, PolicySet, Rate, RateError, RateUnit, Risk, Rule, RuleId,
    RuleLimit, Scope, Setting, Settings, Spanned, Subject, Tier, Timezone,
};
pub use pattern::{Pattern, PatternError};
pub use rule_parts::{RuleParts, generated_rule_name};
pub use shift::Shift;
pub use time::{TimeError, TimeOfDay, TimeWindow, Weekday, WeekdaySet};
pub use value::{Path, Value};
