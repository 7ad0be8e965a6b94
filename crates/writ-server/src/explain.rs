//! `POST /v1/explain`: a decision with the steps that led to it, from the
//! reference evaluator on the policy sources (each step with where it is
//! written: file, line, column). The runtime decides too, and an answer
//! where the two disagree says so instead of choosing. A bundle holds no
//! spans: a server serving one answers 400.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use writ_diagnostics::{SourceMap, Span};
use writ_eval::{Outcome, Step, Written};
use writ_runtime::Request;

use crate::error::ApiError;
use crate::policy::Loaded;

fn at(sources: &SourceMap, span: Option<Span>) -> Value {
    span.and_then(|s| sources.location(s)).map_or(
        Value::Null,
        |(file, lc)| json!({"file": file, "line": lc.line, "column": lc.column}),
    )
}

fn written(sources: &SourceMap, w: &Written) -> Value {
    json!({"text": w.text, "at": at(sources, w.span)})
}

fn outcome(sources: &SourceMap, o: &Outcome) -> Value {
    let all = |ws: &[Written]| ws.iter().map(|w| written(sources, w)).collect::<Vec<_>>();
    match o {
        Outcome::Applied(e) => json!({"applied": e.as_str()}),
        Outcome::Action { action, patterns } => {
            json!({"no_match": "action", "value": action, "patterns": all(patterns)})
        }
        Outcome::Target { target, patterns } => {
            json!({"no_match": "target", "value": target, "patterns": all(patterns)})
        }
        Outcome::Scope { list, wanted, have } => {
            json!({"out_of_scope": list.as_str(), "wanted": all(wanted), "have": have})
        }
        Outcome::Condition {
            failed,
            actual,
            unjudged,
        } => {
            json!({"condition_failed": written(sources, failed), "actual": actual, "unjudged": unjudged})
        }
        Outcome::Constraint { failed, reason } => {
            json!({"constraint_failed": written(sources, failed), "reason": reason})
        }
        Outcome::Limit {
            failed,
            retry_after_s,
        } => json!({"limit_reached": written(sources, failed), "retry_after_s": retry_after_s}),
        Outcome::Skipped => json!({"skipped": true}),
    }
}

fn step(sources: &SourceMap, s: &Step) -> Value {
    match s {
        Step::Chain { reason } => json!({"step": "chain", "reason": reason}),
        Step::ChainApproval { reason } => json!({"step": "chain_approval", "reason": reason}),
        Step::Principal { reason } => json!({"step": "principal", "reason": reason}),
        Step::Ceiling { reason, span } => {
            json!({"step": "ceiling", "reason": reason, "at": at(sources, *span)})
        }
        Step::Rule(r) => {
            let mut m = Map::new();
            m.insert("step".into(), "rule".into());
            m.insert("rule".into(), r.name.clone().into());
            m.insert("at".into(), at(sources, Some(r.span)));
            m.insert("decided".into(), r.decided.into());
            m.insert("outcome".into(), outcome(sources, &r.outcome));
            if let Some((w, actual)) = &r.unjudged {
                m.insert(
                    "unjudged".into(),
                    json!({"part": written(sources, w), "actual": actual}),
                );
            }
            Value::Object(m)
        }
        Step::Default {
            effect,
            span,
            reason,
        } => {
            json!({"step": "default", "effect": effect.as_str(), "reason": reason, "at": at(sources, *span)})
        }
    }
}

/// The explanation of `req` on `loaded`, as the endpoint answers it.
pub fn explain(loaded: &Loaded, req: &Request) -> Response {
    let Some(comp) = &loaded.compilation else {
        return ApiError::bad_request(
            "explanations need the policy sources (a bundle holds no spans): serve the policy files",
        )
        .into_response();
    };
    let Some(set) = comp.checked_set() else {
        return ApiError::internal("the served policy has errors").into_response();
    };
    let mut engine = match writ_compiler::engine::SourceEngine::new(set, comp) {
        Ok(e) => e,
        Err(e) => return ApiError::internal(e.to_string()).into_response(),
    };
    let now = req.at.unwrap_or_else(jiff::Timestamp::now);
    let (decision, why, disagreement) = engine.explain(req, now);
    if let Some(d) = disagreement {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "engines_disagree",
            format!(
                "the runtime decided {} and the reference evaluator {}; report this",
                d.runtime, d.reference
            ),
        )
        .into_response();
    }
    let decision: Value = serde_json::from_str(&decision.to_json()).unwrap_or(Value::Null);
    let steps: Vec<Value> = why.steps.iter().map(|s| step(&comp.sources, s)).collect();
    Json(json!({"decision": decision, "steps": steps, "revision": loaded.revision})).into_response()
}
