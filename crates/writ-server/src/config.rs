//! What `writ serve` is told: flags (the CLI fills [`Config`]), a YAML
//! config file, and MeshGuard's environment variables where they apply.
//! Precedence: a flag, then the environment, then the file, then the
//! default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// `enforce` answers denials as denials; `audit` allows everything and
/// records what would have been denied (MeshGuard's `MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

impl Mode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }

    /// # Errors
    /// A sentence naming the accepted values.
    pub fn parse(text: &str) -> Result<Mode, ConfigError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "enforce" => Ok(Mode::Enforce),
            "audit" => Ok(Mode::Audit),
            other => Err(ConfigError(format!(
                "MODE `{other}` is not a mode: use `enforce` or `audit`"
            ))),
        }
    }
}

/// When the limit store cannot be reached: deny (the default) or allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreFailure {
    #[default]
    Deny,
    Allow,
}

/// A configuration problem, said in one sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Everything the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub mode: Mode,
    /// Policy sources (files or directories, any dialect) ...
    pub policies: Vec<PathBuf>,
    /// ... or one compiled bundle.
    pub bundle: Option<PathBuf>,
    /// Refuse any bundle not signed by this key (a `writ keygen` public
    /// key file).
    pub verify: Option<PathBuf>,
    /// Reload when a policy file or the bundle changes (SIGHUP always
    /// reloads).
    pub watch: bool,
    /// Poll a bundle URL (with its ETag) every `bundle_poll`.
    pub bundle_url: Option<String>,
    pub bundle_poll: Duration,
    /// HS256 secret of MeshGuard agent tokens (at least 32 bytes).
    pub jwt_secret: Option<String>,
    /// Public keys (PEM files) of an identity provider: EdDSA or RS256.
    pub jwt_public_keys: Vec<PathBuf>,
    /// The `iss` tokens must carry, when set.
    pub jwt_issuer: Option<String>,
    pub admin_token: Option<String>,
    /// How long the tokens the admin API issues are valid.
    pub token_ttl: Duration,
    pub proxy_target: Option<String>,
    /// The agent registry (SQLite).
    pub db_path: PathBuf,
    /// The audit log (`.db`/`.sqlite`: SQLite; else JSON Lines); the
    /// admin audit query needs SQLite.
    pub audit_path: PathBuf,
    pub audit_retention_days: u32,
    /// How much the audit log's threads raise their nice value (0-19;
    /// `writ_audit::AuditOptions::nice`; pruning too).
    pub audit_nice: u8,
    pub metrics: bool,
    /// `redis://...` to share rate limits between instances.
    pub limits: Option<String>,
    pub on_store_failure: StoreFailure,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8181)),
            mode: Mode::Enforce,
            policies: Vec::new(),
            bundle: None,
            verify: None,
            watch: true,
            bundle_url: None,
            bundle_poll: Duration::from_secs(30),
            jwt_secret: None,
            jwt_public_keys: Vec::new(),
            jwt_issuer: None,
            admin_token: None,
            token_ttl: Duration::from_secs(24 * 3600),
            proxy_target: None,
            db_path: PathBuf::from("writ-serve.db"),
            audit_path: PathBuf::from("writ-audit.db"),
            audit_retention_days: 90,
            audit_nice: 19,
            metrics: true,
            limits: None,
            on_store_failure: StoreFailure::Deny,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(10),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The config file: every field optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub mode: Option<Mode>,
    pub policies: Option<Vec<PathBuf>>,
    pub bundle: Option<PathBuf>,
    pub verify: Option<PathBuf>,
    pub watch: Option<bool>,
    pub bundle_url: Option<String>,
    pub bundle_poll_seconds: Option<u64>,
    pub jwt_secret: Option<String>,
    pub jwt_public_keys: Option<Vec<PathBuf>>,
    pub jwt_issuer: Option<String>,
    pub admin_token: Option<String>,
    pub proxy_target: Option<String>,
    pub db_path: Option<PathBuf>,
    pub audit_path: Option<PathBuf>,
    pub audit_retention_days: Option<u32>,
    pub audit_nice: Option<u8>,
    pub metrics: Option<bool>,
    pub limits: Option<String>,
    pub on_store_failure: Option<StoreFailure>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_seconds: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl File {
    /// # Errors
    /// When the file cannot be read or is not a config file.
    pub fn read(path: &Path) -> Result<File, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        serde_saphyr::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }
}

/// The environment, as a function so tests need not set variables.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment (empty values count as unset).
#[must_use]
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Layers the environment and then the file under what is already
    /// set. `set` says which fields flags gave (those are kept).
    ///
    /// # Errors
    /// A value the server cannot use.
    pub fn layer(
        mut self,
        flags: &Flags,
        env: Env<'_>,
        file: Option<File>,
    ) -> Result<Config, ConfigError> {
        let file = file.unwrap_or_default();
        let host = flags.host.clone().or_else(|| env("HOST")).or(file.host);
        let port = match (flags.port, env("PORT")) {
            (Some(p), _) => Some(p),
            (None, Some(p)) => Some(
                p.trim()
                    .parse::<u16>()
                    .map_err(|_| ConfigError(format!("PORT `{p}` is not a port number")))?,
            ),
            (None, None) => file.port,
        };
        if host.is_some() || port.is_some() {
            let ip = match host {
                Some(h) => h
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| ConfigError(format!("HOST `{h}` is not an IP address")))?,
                None => self.bind.ip(),
            };
            self.bind = SocketAddr::new(ip, port.unwrap_or(self.bind.port()));
        }
        if let Some(m) = flags.mode {
            self.mode = m;
        } else if let Some(m) = env("MODE") {
            self.mode = Mode::parse(&m)?;
        } else if let Some(m) = file.mode {
            self.mode = m;
        }
        self.policies = if !flags.policies.is_empty() {
            flags.policies.clone()
        } else if let Some(dir) = env("POLICIES_DIR") {
            vec![PathBuf::from(dir)]
        } else {
            file.policies.unwrap_or_default()
        };
        self.bundle = flags.bundle.clone().or(file.bundle);
        self.verify = flags.verify.clone().or(file.verify);
        self.watch = !flags.no_watch && file.watch.unwrap_or(true);
        self.bundle_url = flags.bundle_url.clone().or(file.bundle_url);
        if let Some(s) = flags.bundle_poll_seconds.or(file.bundle_poll_seconds) {
            self.bundle_poll = Duration::from_secs(s.max(1));
        }
        self.jwt_secret = flags
            .jwt_secret
            .clone()
            .or_else(|| env("JWT_SECRET"))
            .or(file.jwt_secret);
        self.jwt_public_keys = if flags.jwt_public_keys.is_empty() {
            file.jwt_public_keys.unwrap_or_default()
        } else {
            flags.jwt_public_keys.clone()
        };
        self.jwt_issuer = flags.jwt_issuer.clone().or(file.jwt_issuer);
        self.admin_token = flags
            .admin_token
            .clone()
            .or_else(|| env("ADMIN_TOKEN"))
            .or(file.admin_token);
        self.proxy_target = flags
            .proxy_target
            .clone()
            .or_else(|| env("PROXY_TARGET"))
            .or(file.proxy_target);
        if let Some(p) = flags
            .db_path
            .clone()
            .or_else(|| env("DB_PATH").map(PathBuf::from))
            .or(file.db_path)
        {
            self.db_path = p;
        }
        if let Some(p) = flags.audit_path.clone().or(file.audit_path) {
            self.audit_path = p;
        }
        if let Some(d) = flags.audit_retention_days {
            self.audit_retention_days = d;
        } else if let Some(d) = env("AUDIT_RETENTION_DAYS") {
            self.audit_retention_days = d.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "AUDIT_RETENTION_DAYS `{d}` is not a number of days"
                ))
            })?;
        } else if let Some(d) = file.audit_retention_days {
            self.audit_retention_days = d;
        }
        if let Some(n) = flags.audit_nice.or(file.audit_nice) {
            self.audit_nice = n;
        }
        if let Some(m) = env("METRICS_ENABLED") {
            self.metrics = matches!(
                m.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            );
        } else if let Some(m) = file.metrics {
            self.metrics = m;
        }
        self.limits = flags.limits.clone().or(file.limits);
        if let Some(f) = flags.on_store_failure.or(file.on_store_failure) {
            self.on_store_failure = f;
        }
        if let Some(b) = flags.max_body_bytes.or(file.max_body_bytes) {
            self.max_body_bytes = b;
        }
        if let Some(s) = flags
            .request_timeout_seconds
            .or(file.request_timeout_seconds)
        {
            self.request_timeout = Duration::from_secs(s.max(1));
        }
        self.tls_cert = flags.tls_cert.clone().or(file.tls_cert);
        self.tls_key = flags.tls_key.clone().or(file.tls_key);
        self.check()?;
        Ok(self)
    }

    /// # Errors
    /// Settings that cannot work together.
    pub fn check(&self) -> Result<(), ConfigError> {
        match (self.policies.is_empty(), &self.bundle, &self.bundle_url) {
            (true, None, None) => {
                return Err(ConfigError(
                    "no policy: give policy files or a directory (or POLICIES_DIR), --bundle, or --bundle-url".to_owned(),
                ));
            }
            (false, Some(_), _) | (false, _, Some(_)) | (true, Some(_), Some(_)) => {
                return Err(ConfigError(
                    "give one source of policy: policy files, --bundle or --bundle-url".to_owned(),
                ));
            }
            _ => {}
        }
        if self.verify.is_some() && !self.policies.is_empty() {
            return Err(ConfigError(
                "--verify checks a bundle's signature; serve a signed bundle (--bundle or --bundle-url) to use it".to_owned(),
            ));
        }
        if let Some(s) = &self.jwt_secret
            && s.len() < 32
        {
            return Err(ConfigError(format!(
                "JWT_SECRET is {} bytes; an HS256 secret must be at least 32",
                s.len()
            )));
        }
        if let Some(t) = &self.admin_token
            && t.len() < 16
        {
            return Err(ConfigError(
                "ADMIN_TOKEN is shorter than 16 characters; use a long random token".to_owned(),
            ));
        }
        if self.audit_nice > writ_audit::MAX_NICE {
            return Err(ConfigError(format!(
                "audit_nice {} is not a nice step: use 0 to {}",
                self.audit_nice,
                writ_audit::MAX_NICE
            )));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError(
                "TLS needs both --tls-cert and --tls-key".to_owned(),
            ));
        }
        if let Some(l) = &self.limits
            && !(l.starts_with("redis://") || l.starts_with("rediss://"))
        {
            return Err(ConfigError(format!(
                "--limits `{l}` is not a Redis URL (redis://host:port)"
            )));
        }
        Ok(())
    }

    /// Whether requests other than `/health` must carry a token.
    #[must_use]
    pub fn authenticates(&self) -> bool {
        self.jwt_secret.is_some() || !self.jwt_public_keys.is_empty()
    }
}

/// What flags gave (every field optional: unset flags let the
/// environment and the file decide).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub mode: Option<Mode>,
    pub policies: Vec<PathBuf>,
    pub bundle: Option<PathBuf>,
    pub verify: Option<PathBuf>,
    pub no_watch: bool,
    pub bundle_url: Option<String>,
    pub bundle_poll_seconds: Option<u64>,
    pub jwt_secret: Option<String>,
    pub jwt_public_keys: Vec<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub admin_token: Option<String>,
    pub proxy_target: Option<String>,
    pub db_path: Option<PathBuf>,
    pub audit_path: Option<PathBuf>,
    pub audit_retention_days: Option<u32>,
    pub audit_nice: Option<u8>,
    pub limits: Option<String>,
    pub on_store_failure: Option<StoreFailure>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_seconds: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn meshguard_environment_fills_what_flags_leave() {
        let env = env_of(&[
            ("PORT", "3100"),
            ("HOST", "0.0.0.0"),
            ("MODE", "audit"),
            ("POLICIES_DIR", "./policies"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("ADMIN_TOKEN", "admin-token-0123456789"),
            ("DB_PATH", "/tmp/mg.db"),
            ("AUDIT_RETENTION_DAYS", "7"),
            ("METRICS_ENABLED", "false"),
        ]);
        let c = Config::default().layer(&Flags::default(), &env, None);
        let c = c.unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.bind.to_string(), "0.0.0.0:3100");
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(c.policies, vec![PathBuf::from("./policies")]);
        assert_eq!(c.db_path, PathBuf::from("/tmp/mg.db"));
        assert_eq!(c.audit_retention_days, 7);
        assert!(!c.metrics);
        assert!(c.authenticates());
        let flags = Flags {
            port: Some(9000),
            mode: Some(Mode::Enforce),
            audit_retention_days: Some(0),
            ..Flags::default()
        };
        let c = Config::default().layer(&flags, &env, None);
        let c = c.unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.audit_retention_days, 0);
    }

    #[test]
    fn the_audit_threads_priority_comes_from_a_flag_then_the_file() {
        let none = |_: &str| None;
        let policies = Flags {
            policies: vec!["p.yaml".into()],
            ..Flags::default()
        };
        let nice = |flags: &Flags, file: Option<File>| {
            Config::default()
                .layer(flags, &none, file)
                .map(|c| c.audit_nice)
        };
        assert_eq!(nice(&policies, None), Ok(19), "the default");
        let file = || {
            Some(File {
                audit_nice: Some(5),
                ..File::default()
            })
        };
        assert_eq!(nice(&policies, file()), Ok(5));
        let flags = Flags {
            audit_nice: Some(0),
            ..policies.clone()
        };
        assert_eq!(nice(&flags, file()), Ok(0), "a flag wins");
        let flags = Flags {
            audit_nice: Some(20),
            ..policies
        };
        assert!(nice(&flags, None).is_err_and(|e| e.0.contains("use 0 to 19")));
    }

    #[test]
    fn bad_settings_are_refused_with_a_sentence() {
        let none = |_: &str| None;
        let cases: &[(Flags, &str)] = &[
            (Flags::default(), "no policy"),
            (
                Flags {
                    policies: vec!["p.yaml".into()],
                    jwt_secret: Some("short".into()),
                    ..Flags::default()
                },
                "at least 32",
            ),
            (
                Flags {
                    policies: vec!["p.yaml".into()],
                    bundle: Some("b.wbundle".into()),
                    ..Flags::default()
                },
                "one source of policy",
            ),
            (
                Flags {
                    policies: vec!["p.yaml".into()],
                    limits: Some("localhost:6379".into()),
                    ..Flags::default()
                },
                "not a Redis URL",
            ),
        ];
        for (flags, want) in cases {
            match Config::default().layer(flags, &none, None) {
                Ok(c) => unreachable!("accepted {c:?}"),
                Err(e) => assert!(e.0.contains(want), "{e} lacks {want}"),
            }
        }
        let env = env_of(&[("MODE", "bypass")]);
        let flags = Flags {
            policies: vec!["p.yaml".into()],
            ..Flags::default()
        };
        let e = Config::default().layer(&flags, &env, None).err();
        assert!(e.is_some_and(|e| e.0.contains("enforce")));
    }
}
