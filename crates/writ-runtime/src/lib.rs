//! writ's embeddable runtime: load a compiled policy bundle and decide
//! requests, in-process, in nanoseconds.
//!
//! This crate is a leaf: it depends on no other writ crate and has no
//! compiler inside. `writ compile` writes a bundle; [`Runtime::from_bytes`]
//! checks it (magic, format version, XXH3-128 checksum, and with
//! [`Runtime::from_bytes_verified`] an Ed25519 signature) and prepares it.
//! A bundle that fails any check is an error, never a panic and never a
//! partial load. [`Runtime::check`] decides one request.
//!
//! ```no_run
//! # fn main() -> Result<(), writ_runtime::LoadError> {
//! let runtime = writ_runtime::Runtime::load("policy.wbundle")?;
//! let mut req = writ_runtime::Request::new("billing-agent", "tool:call");
//! req.target = Some("refund".into());
//! req.context.insert("amount".into(), writ_runtime::Value::Number(40.0));
//! let decision = runtime.check(&req);
//! println!("{}", decision.to_json(&req));
//! # Ok(()) }
//! ```
//!
//! A decision is made in this order (the same as writ's reference
//! evaluator, which the differential tests hold it to): the delegation
//! chain (depth, each hop, the strict ceiling), the principal (roles from
//! the request, the declared agent and the token), the ceilings of every
//! entry bounding the principal (model, tool, host and delegation lists,
//! TLS, limits), then the rules that the action index returns as
//! candidates, in policy order, and the default.

/// The Rust examples of the user docs, compiled as doc tests.
#[cfg(all(doctest, feature = "redis", feature = "reload"))]
#[doc = include_str!("../../../docs/runtime.md")]
mod runtime_docs {}
#[cfg(feature = "reload")]
pub mod engine;
mod error;
mod eval;
pub mod glob;
mod globset;
#[cfg(feature = "json")]
mod json;
pub mod json_text;
pub mod limiter;
mod matcher;
pub mod model;
pub mod reason;
#[cfg(feature = "redis")]
pub mod redis_store;
mod request;
pub mod vocab;
pub mod wire;

#[cfg(feature = "reload")]
pub use engine::{Engine, Watcher};
pub use error::{IoError, LoadError, SignatureError};
pub use eval::{Decision, FullLimit, Reason};
pub use limiter::{InProcess, LimitStore, OnStoreFailure};
pub use model::{Model, Value};
pub use reason::ScopeList;
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;
pub use request::{Request, RequestError, parse_tier};
pub use vocab::{Effect, Risk, Tier};

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"WRITBNDL";
/// The bundle format this runtime writes, and the newest it reads.
///
/// Format 3 added one rule flag (a rule limit shared by all agents); the
/// layout is otherwise format 2's, so format 2 reads as format 3. A runtime
/// that reads only format 2 refuses format 3 by its version instead of
/// counting a shared limit per agent.
///
/// Format 4 added the policy whose default applies to the settings (read
/// as none from older formats), and may end the body with one more
/// section, after the graph: the action ceilings of delegated requests
/// (MeshGuard's `delegation.permissionCeiling`), written only when there
/// is one. A runtime that reads only format 3 refuses format 4 by its
/// version instead of dropping a ceiling.
///
/// Format 5 carries globs as glob programs ([`glob`]) instead of
/// serialized DFAs; a runtime that read DFAs refuses it by its version,
/// and this one refuses the older formats, whose DFAs it cannot run
/// (recompile them).
pub const FORMAT_VERSION: u32 = 5;
/// The oldest bundle format this runtime reads.
pub const OLDEST_FORMAT_VERSION: u32 = 5;
/// The length of the checksum that follows the body.
pub const CHECKSUM_LEN: usize = 16;

/// The header of a bundle: what `writ inspect` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub format_version: u32,
    pub writ_version: String,
    pub revision: [u8; 32],
    pub body_len: usize,
    pub signed: bool,
}

/// Signs the covered bytes of a bundle with Ed25519 (used by the compiler).
pub type Signer<'a> = dyn Fn(&[u8]) -> [u8; 64] + 'a;

/// A checked bundle, split: header, body, the bytes the signature covers,
/// and the signature.
type Parts<'a> = (Header, &'a [u8], &'a [u8], Option<[u8; 64]>);

/// Where the body sits in a bundle: after magic, version and length.
const BODY_START: usize = 16;

/// The checksum of a bundle's first bytes (header and body): XXH3-128.
/// It catches damage (a cut or changed file) at memory speed; deliberate
/// changes are what the Ed25519 signature is for.
#[must_use]
pub fn checksum(covered: &[u8]) -> [u8; CHECKSUM_LEN] {
    xxhash_rust::xxh3::xxh3_128(covered).to_le_bytes()
}

/// Layout: magic (8) | format version (u32) | body length (u32) | body |
/// XXH3-128 of everything before (16) | signature flag (u8) | Ed25519
/// signature over everything before the flag (64, when flagged).
#[must_use]
pub fn encode_bundle(model: &Model, sign: Option<&Signer<'_>>) -> Vec<u8> {
    let body = model.encode();
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&body);
    let sum = checksum(&out);
    out.extend_from_slice(&sum);
    match sign {
        Some(sign) => {
            let sig = sign(&out);
            out.push(1);
            out.extend_from_slice(&sig);
        }
        None => out.push(0),
    }
    out
}

/// Splits and checks a bundle: magic, version, length, checksum. Returns
/// the header, the body, the signed bytes and the signature.
fn split(bytes: &[u8]) -> Result<Parts<'_>, LoadError> {
    let mut r = wire::Reader::new(bytes);
    if r.take(8).map_err(|_| LoadError::NotABundle)? != MAGIC {
        return Err(LoadError::NotABundle);
    }
    let version = r.u32().map_err(|_| LoadError::Checksum)?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(LoadError::UnsupportedVersion(version));
    }
    let len = r.u32().map_err(|_| LoadError::Checksum)? as usize;
    let body = r.take(len).map_err(|_| LoadError::Checksum)?;
    let signed_end = BODY_START + len;
    let sum = r.take(CHECKSUM_LEN).map_err(|_| LoadError::Checksum)?;
    let covered = bytes.get(..signed_end).ok_or(LoadError::Checksum)?;
    if checksum(covered).as_slice() != sum {
        return Err(LoadError::Checksum);
    }
    let flag = r.u8().map_err(|_| LoadError::Checksum)?;
    let signature = match flag {
        0 => None,
        1 => {
            let s: [u8; 64] = r
                .take(64)
                .map_err(|_| LoadError::Signature(SignatureError::CutOff))?
                .try_into()
                .map_err(|_| LoadError::Signature(SignatureError::CutOff))?;
            Some(s)
        }
        _ => return Err(LoadError::Corrupt("bad signature flag".to_owned())),
    };
    r.finish()?;
    let mut hr = wire::Reader::new(body);
    let writ_version = hr.str()?;
    let revision: [u8; 32] = hr
        .take(32)?
        .try_into()
        .map_err(|_| LoadError::Corrupt("truncated revision".to_owned()))?;
    let signed_bytes = bytes
        .get(..signed_end + CHECKSUM_LEN)
        .ok_or(LoadError::Checksum)?;
    Ok((
        Header {
            format_version: version,
            writ_version,
            revision,
            body_len: len,
            signed: signature.is_some(),
        },
        body,
        signed_bytes,
        signature,
    ))
}

/// Reads a bundle's header after checking its integrity (for `writ inspect`).
///
/// # Errors
/// As [`Runtime::from_bytes`].
pub fn read_header(bytes: &[u8]) -> Result<Header, LoadError> {
    split(bytes).map(|(h, ..)| h)
}

/// Decodes a bundle's model after checking its integrity.
///
/// # Errors
/// As [`Runtime::from_bytes`].
pub fn read_model(bytes: &[u8]) -> Result<Model, LoadError> {
    let (_, body, ..) = split(bytes)?;
    Model::decode(body)
}

/// A loaded bundle, ready to decide. `Send + Sync`: share it behind an
/// `Arc` across threads; limits are kept inside, behind a lock taken only
/// by requests that meet a limit.
#[derive(Debug)]
pub struct Runtime {
    header: Header,
    pub(crate) inner: eval::Compiled,
}

impl Runtime {
    /// Loads a bundle, signed or not.
    ///
    /// # Errors
    /// [`LoadError`] when the bytes are not a bundle, of another format
    /// version, fail the checksum, or are malformed anywhere.
    pub fn from_bytes(bytes: &[u8]) -> Result<Runtime, LoadError> {
        Runtime::from_vec(bytes.to_vec())
    }

    /// Loads a bundle, taking its bytes (no copy; read the file with
    /// `std::fs::read` and pass the result).
    ///
    /// # Errors
    /// As [`Runtime::from_bytes`].
    pub fn from_vec(bytes: Vec<u8>) -> Result<Runtime, LoadError> {
        let header = split(&bytes)?.0;
        let body = BODY_START..BODY_START + header.body_len;
        Ok(Runtime {
            header,
            inner: eval::Compiled::new(bytes, body)?,
        })
    }

    /// Reads and loads a bundle file.
    ///
    /// # Errors
    /// [`LoadError::Io`] when the file cannot be read, else as
    /// [`Runtime::from_bytes`].
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Runtime, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| LoadError::Io(IoError::new(path, e)))?;
        Runtime::from_vec(bytes)
    }

    /// Loads a bundle that must carry a valid Ed25519 signature by the
    /// holder of `public_key` (32 bytes).
    ///
    /// # Errors
    /// As [`Runtime::from_bytes`], and [`LoadError::Signature`] when the
    /// bundle is unsigned or the signature does not verify.
    pub fn from_bytes_verified(bytes: &[u8], public_key: &[u8; 32]) -> Result<Runtime, LoadError> {
        let (_, _, signed, signature) = split(bytes)?;
        let Some(signature) = signature else {
            return Err(LoadError::Signature(SignatureError::Unsigned));
        };
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .map_err(|_| LoadError::Signature(SignatureError::BadKey))?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature);
        key.verify_strict(signed, &sig)
            .map_err(|_| LoadError::Signature(SignatureError::Mismatch))?;
        Runtime::from_bytes(bytes)
    }

    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Counts limits in `store` instead of this runtime's own in-process
    /// store: give several runtimes (a reloaded bundle, other processes
    /// through Redis) one store so that they share counts. `on_failure`
    /// says what to do when the store cannot be reached (deny by default).
    #[must_use]
    pub fn with_limit_store(
        mut self,
        store: std::sync::Arc<dyn LimitStore>,
        on_failure: OnStoreFailure,
    ) -> Runtime {
        self.inner.limits = store;
        self.inner.on_store_failure = on_failure;
        self
    }

    /// What this runtime does when its limit store cannot be reached.
    #[must_use]
    pub fn on_store_failure(&self) -> OnStoreFailure {
        self.inner.on_store_failure
    }

    /// The store this runtime counts limits in.
    #[must_use]
    pub fn limit_store(&self) -> std::sync::Arc<dyn LimitStore> {
        std::sync::Arc::clone(&self.inner.limits)
    }

    /// Decodes every rule now. Loading only checks rule records and
    /// indexes their actions; each rule is decoded the first time a
    /// request needs it. Call this after loading to take that cost up
    /// front (for an even first-request latency).
    ///
    /// # Errors
    /// [`LoadError::Corrupt`] if a rule record cannot be decoded (which the
    /// checks at load rule out).
    pub fn prepare_all(&self) -> Result<(), LoadError> {
        self.inner.prepare_all()
    }

    /// Number of rules in the bundle.
    #[must_use]
    pub fn rule_count(&self) -> usize {
        self.inner.rule_count()
    }

    /// Decides a request at its `at` time, or now.
    #[must_use]
    pub fn check(&self, req: &Request) -> Decision<'_> {
        match req.at {
            // No clock read when the request carries its time.
            Some(at) => self.check_at(req, at),
            None => self.check_at(req, jiff::Timestamp::now()),
        }
    }

    /// Decides a request; `now` is used when the request has no `at`.
    #[must_use]
    pub fn check_at(&self, req: &Request, now: jiff::Timestamp) -> Decision<'_> {
        self.inner.check(req, now)
    }

    /// What [`Runtime::check_at`] would decide, without acting on it: an
    /// allow takes nothing from the limits it meets (a full limit still
    /// refuses). For questions such as "should this handoff be offered at
    /// all?", asked before anything happens.
    #[must_use]
    pub fn peek_at(&self, req: &Request, now: jiff::Timestamp) -> Decision<'_> {
        self.inner.peek(req, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_runtime_is_send_and_sync() {
        assert_send_sync::<Runtime>();
    }

    #[test]
    fn garbage_is_not_a_bundle() {
        assert_eq!(
            Runtime::from_bytes(b"hello").err(),
            Some(LoadError::NotABundle)
        );
        assert_eq!(Runtime::from_bytes(b"").err(), Some(LoadError::NotABundle));
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&9u32.to_le_bytes());
        assert_eq!(
            Runtime::from_bytes(&v).err(),
            Some(LoadError::UnsupportedVersion(9))
        );
    }
}
