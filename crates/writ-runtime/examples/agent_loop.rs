//! An agent loop that asks writ before every tool call.
//!
//! Run it (after `writ compile examples/support.writ -o support.wbundle`):
//!
//! ```sh
//! cargo run -p writ-runtime --example agent_loop -- support.wbundle
//! ```
//!
//! The "agent" here is a scripted list of tool calls, standing in for a
//! model choosing tools. Each call becomes a writ request; allowed calls
//! run, calls needing approval wait for a human (here: refused), denied
//! calls are reported back to the model with writ's reason.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use writ_runtime::{Effect, Request, Runtime, Value};

/// What the model asked to do.
struct ToolCall {
    tool: &'static str,
    args: &'static [(&'static str, f64)],
    currency: Option<&'static str>,
}

fn run_tool(call: &ToolCall) -> String {
    format!("{} done", call.tool)
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: agent_loop BUNDLE");
        return ExitCode::FAILURE;
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Load once, share everywhere: a Runtime is Send + Sync.
    let runtime = match Runtime::from_bytes(&bytes) {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            eprintln!("refusing to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let plan = [
        ToolCall {
            tool: "lookup_customer",
            args: &[],
            currency: None,
        },
        ToolCall {
            tool: "refund",
            args: &[("amount", 40.0)],
            currency: Some("USD"),
        },
        ToolCall {
            tool: "refund",
            args: &[("amount", 400.0)],
            currency: Some("USD"),
        },
        ToolCall {
            tool: "delete_customer",
            args: &[],
            currency: None,
        },
        ToolCall {
            tool: "wire_transfer",
            args: &[("amount", 10.0)],
            currency: None,
        },
    ];
    // A fixed time keeps the example's output the same every day.
    let at: jiff::Timestamp = match "2025-01-15T15:00:00Z".parse() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bad time: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ran = 0;
    for call in &plan {
        let mut context = BTreeMap::new();
        for (k, v) in call.args {
            context.insert((*k).to_owned(), Value::Number(*v));
        }
        if let Some(c) = call.currency {
            context.insert("currency".to_owned(), Value::String(c.to_owned()));
        }
        let req = Request {
            agent: "billing-agent".to_owned(),
            action: "tool:call".to_owned(),
            target: Some(call.tool.to_owned()),
            context,
            at: Some(at),
            ..Request::default()
        };
        let decision = runtime.check(&req);
        let reason = decision.reason_text(&req).unwrap_or_default();
        match decision.effect {
            Effect::Allow => {
                ran += 1;
                println!("allow   {:<16} {}", call.tool, run_tool(call));
            }
            Effect::Approve => println!(
                "approve {:<16} waiting for a human (rule {})",
                call.tool,
                decision.rule.unwrap_or("-")
            ),
            Effect::Deny => println!("deny    {:<16} {reason}", call.tool),
        }
    }
    println!("{ran} of {} tool calls ran", plan.len());
    ExitCode::SUCCESS
}
