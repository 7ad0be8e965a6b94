//! `writ serve`: flags into a [`writ_server::Config`], then the server.

use std::path::PathBuf;
use std::process::ExitCode;

use writ_server::config::{self, Flags, Mode, StoreFailure};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ModeArg {
    Enforce,
    Audit,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FailureArg {
    Deny,
    Allow,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy files or directories (any dialect), compiled at start and
    /// on every reload. Or give --bundle / --bundle-url.
    #[arg(value_name = "POLICY")]
    pub policies: Vec<PathBuf>,
    /// A compiled bundle (`writ compile`) to serve.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Poll this URL for a bundle (with its ETag) and serve it.
    #[arg(long, value_name = "URL")]
    pub bundle_url: Option<String>,
    /// Seconds between polls of --bundle-url (default 30).
    #[arg(long, value_name = "SECONDS")]
    pub bundle_poll: Option<u64>,
    /// Refuse any bundle not signed by this key (`writ keygen`).
    #[arg(long, value_name = "PUBKEY")]
    pub verify: Option<PathBuf>,
    /// A YAML config file (keys as the flags, with `_`: `admin_token`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1; env HOST).
    #[arg(long)]
    pub host: Option<String>,
    /// Port (default 8181; env PORT).
    #[arg(long)]
    pub port: Option<u16>,
    /// enforce (default) or audit: allow everything, record would-be
    /// denials (env MODE).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Do not reload on file changes (SIGHUP still reloads).
    #[arg(long)]
    pub no_watch: bool,
    /// HS256 secret of agent tokens, 32 bytes or more (env JWT_SECRET).
    #[arg(long, value_name = "SECRET")]
    pub jwt_secret: Option<String>,
    /// An identity provider's public key (PEM, Ed25519 or RSA): its
    /// EdDSA/RS256 tokens are accepted. Repeatable.
    #[arg(long = "jwt-public-key", value_name = "PEM")]
    pub jwt_public_keys: Vec<PathBuf>,
    /// The `iss` every token must carry.
    #[arg(long, value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Turns the admin API on (env ADMIN_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// Upstream of `/proxy/{path}` (env PROXY_TARGET).
    #[arg(long, value_name = "URL")]
    pub proxy_target: Option<String>,
    /// The agent registry, SQLite (env DB_PATH; default writ-serve.db).
    #[arg(long, value_name = "FILE")]
    pub db_path: Option<PathBuf>,
    /// The audit log: SQLite for .db (queried by the admin API), JSON
    /// Lines otherwise (default writ-audit.db).
    #[arg(long, value_name = "FILE")]
    pub audit_path: Option<PathBuf>,
    /// Remove audit records written more than N days ago, at start and
    /// hourly; 0 keeps every record (env AUDIT_RETENTION_DAYS; default
    /// 90). SQLite logs only: a JSON Lines log is kept whole.
    #[arg(long, value_name = "N")]
    pub audit_retention_days: Option<u32>,
    /// How much lower than the server's the audit log's threads run
    /// (their nice value raised by N, 0-19; default 19; Linux): writing
    /// the log gives way to deciding. 0: the same priority.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=19))]
    pub audit_nice: Option<u8>,
    /// Share rate limits through Redis: redis://host:port.
    #[arg(long, value_name = "URL")]
    pub limits: Option<String>,
    /// When the limit store cannot be reached: deny (default) or allow.
    #[arg(long, value_enum)]
    pub on_store_failure: Option<FailureArg>,
    /// Largest request body, in bytes (default 1 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds a request may take before 504 (default 10).
    #[arg(long, value_name = "SECONDS")]
    pub request_timeout: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM) and --tls-key.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Threads that serve requests (default: one per core the process may
    /// run on). 1 serves everything on one thread, with no work stealing.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

pub fn run(args: &Args) -> ExitCode {
    let flags = Flags {
        host: args.host.clone(),
        port: args.port,
        mode: args.mode.map(|m| match m {
            ModeArg::Enforce => Mode::Enforce,
            ModeArg::Audit => Mode::Audit,
        }),
        policies: args.policies.clone(),
        bundle: args.bundle.clone(),
        verify: args.verify.clone(),
        no_watch: args.no_watch,
        bundle_url: args.bundle_url.clone(),
        bundle_poll_seconds: args.bundle_poll,
        jwt_secret: args.jwt_secret.clone(),
        jwt_public_keys: args.jwt_public_keys.clone(),
        jwt_issuer: args.jwt_issuer.clone(),
        admin_token: args.admin_token.clone(),
        proxy_target: args.proxy_target.clone(),
        db_path: args.db_path.clone(),
        audit_path: args.audit_path.clone(),
        audit_retention_days: args.audit_retention_days,
        audit_nice: args.audit_nice,
        limits: args.limits.clone(),
        on_store_failure: args.on_store_failure.map(|f| match f {
            FailureArg::Deny => StoreFailure::Deny,
            FailureArg::Allow => StoreFailure::Allow,
        }),
        max_body_bytes: args.max_body_bytes,
        request_timeout_seconds: args.request_timeout,
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
    };
    let file = match args.config.as_deref().map(config::File::read).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match writ_server::Config::default().layer(&flags, &config::process_env, file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match writ_server::runtime(args.threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the server's runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mode = config.mode;
    let result = runtime.block_on(writ_server::run(config, |addr| {
        eprintln!(
            "writ serve: listening on http://{addr} ({} mode)",
            mode.as_str()
        );
    }));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
