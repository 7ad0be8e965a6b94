//! The one decision path for policy sources: what `writ eval`, `writ test`
//! and `writ plan` decide with.
//!
//! Sources are compiled into a bundle in memory and decided by the runtime,
//! the engine agents embed, so what users test is what agents run. The
//! reference evaluator (an independent implementation, kept as an oracle)
//! is held beside it only to explain a decision; whenever it explains, it
//! decides too, and a decision that differs from the runtime's is reported
//! as a [`Disagreement`] (a bug in writ) rather than printed as if it held.

use writ_eval::{Decision, Evaluator, Explanation, Request};
use writ_ir::{Effect, PolicySet, Risk};

use crate::bundle::CompileError;
use crate::{Compilation, Source};

/// The runtime over a policy compiled in memory, with the reference
/// evaluator beside it for explanations.
pub struct SourceEngine<'p> {
    set: &'p PolicySet,
    bundle: Vec<u8>,
    runtime: writ_runtime::Runtime,
    reference: Evaluator<'p>,
}

impl std::fmt::Debug for SourceEngine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceEngine")
            .field("bundle_bytes", &self.bundle.len())
            .finish_non_exhaustive()
    }
}

/// The runtime and the reference evaluator decided one request
/// differently: a bug in writ. The runtime's decision is the one agents
/// would get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    pub runtime: String,
    pub reference: String,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "writ bug: the runtime (what agents run) decided {} but the reference evaluator (which explains) decided {}; the explanation below may not describe the runtime's decision. Please report this with the policy and the request.",
            self.runtime, self.reference
        )
    }
}

impl<'p> SourceEngine<'p> {
    /// Compiles a checked policy set (from `comp`'s sources) into a bundle
    /// and loads it.
    ///
    /// # Errors
    /// When the compiler cannot build the bundle (e.g. a glob over the
    /// glob program budget).
    pub fn new(set: &'p PolicySet, comp: &Compilation) -> Result<SourceEngine<'p>, CompileError> {
        let bundle = crate::bundle::compile_with(set, &comp.owned_sources(), None, &comp.programs)?;
        SourceEngine::from_bundle(set, bundle)
    }

    /// As [`SourceEngine::new`], from the sources themselves.
    ///
    /// # Errors
    /// As [`SourceEngine::new`].
    pub fn from_sources(
        set: &'p PolicySet,
        sources: &[Source],
    ) -> Result<SourceEngine<'p>, CompileError> {
        SourceEngine::from_bundle(set, crate::bundle::compile(set, sources, None)?)
    }

    fn from_bundle(set: &'p PolicySet, bundle: Vec<u8>) -> Result<SourceEngine<'p>, CompileError> {
        let runtime = load(&bundle)?;
        Ok(SourceEngine {
            set,
            bundle,
            runtime,
            reference: Evaluator::new(set),
        })
    }

    /// Forgets every limit count (a fresh runtime and evaluator).
    ///
    /// # Errors
    /// Never in practice: the bundle loaded once already.
    pub fn reset(&mut self) -> Result<(), CompileError> {
        self.runtime = load(&self.bundle)?;
        self.reference = Evaluator::new(self.set);
        Ok(())
    }

    /// The runtime, for callers that need its own decision type.
    #[must_use]
    pub fn runtime(&self) -> &writ_runtime::Runtime {
        &self.runtime
    }

    /// Decides with the runtime. `now` is used when the request carries no
    /// `at`.
    pub fn check(&mut self, req: &Request, now: jiff::Timestamp) -> Decision {
        let d = self.runtime.check_at(req, req.at.unwrap_or(now));
        decision(&d, req)
    }

    /// Decides with the runtime and explains with the reference evaluator,
    /// which decides too: a different decision is returned as a
    /// [`Disagreement`].
    pub fn explain(
        &mut self,
        req: &Request,
        now: jiff::Timestamp,
    ) -> (Decision, Explanation, Option<Disagreement>) {
        let decided = self.check(req, now);
        let (reference, why) = self.reference.explain(req, now);
        let disagreement = (reference != decided).then(|| Disagreement {
            runtime: decided.to_json(),
            reference: reference.to_json(),
        });
        (decided, why, disagreement)
    }
}

fn load(bundle: &[u8]) -> Result<writ_runtime::Runtime, CompileError> {
    writ_runtime::Runtime::from_bytes(bundle).map_err(CompileError::Refused)
}

/// The runtime's decision in the CLI's decision type.
fn decision(d: &writ_runtime::Decision<'_>, req: &writ_runtime::Request) -> Decision {
    Decision {
        effect: match d.effect {
            writ_runtime::Effect::Allow => Effect::Allow,
            writ_runtime::Effect::Deny => Effect::Deny,
            writ_runtime::Effect::Approve => Effect::Approve,
        },
        rule: d.rule.map(str::to_owned),
        policy: d.policy.map(str::to_owned),
        reason: d.reason_text(req).map(|r| r.into_owned()),
        risk: d.risk.map(|r| match r {
            writ_runtime::Risk::Low => Risk::Low,
            writ_runtime::Risk::Medium => Risk::Medium,
            writ_runtime::Risk::High => Risk::High,
            writ_runtime::Risk::Critical => Risk::Critical,
        }),
        retry_after_s: d.retry_after_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> (Vec<Source>, PolicySet) {
        let sources = vec![Source {
            name: "t.writ".into(),
            text: text.into(),
        }];
        let comp = crate::compile(&sources, None);
        let Some(set) = comp.checked_set().cloned() else {
            unreachable!("{:?}", comp.diagnostics)
        };
        (sources, set)
    }

    #[test]
    fn the_runtime_decides_and_a_reference_that_differs_is_reported() {
        let (sources, allow) =
            set("policy \"p\" {\n  default deny\n}\nrule ok: allow \"tool:call\"\n");
        let (_, deny) = set("policy \"p\" {\n  default deny\n}\nrule no: deny \"tool:call\"\n");
        let mut engine = match SourceEngine::from_sources(&allow, &sources) {
            Ok(e) => e,
            Err(e) => unreachable!("{e}"),
        };
        let req = Request::new("a", "tool:call");
        let now = jiff::Timestamp::UNIX_EPOCH;
        let (d, _, disagreement) = engine.explain(&req, now);
        assert_eq!((d.effect, disagreement), (Effect::Allow, None));
        // An oracle that decides otherwise (as a bug would make it): the
        // runtime's decision stands, and the difference is reported.
        engine.reference = Evaluator::new(&deny);
        let (d, _, disagreement) = engine.explain(&req, now);
        assert_eq!(d.effect, Effect::Allow);
        let Some(dis) = disagreement else {
            unreachable!("no disagreement reported")
        };
        assert!(dis.runtime.contains("\"allow\"") && dis.reference.contains("\"deny\""));
        assert!(dis.to_string().starts_with("writ bug"));
    }
}
