//! `writ compile`, `writ keygen` and `writ inspect`: bundles and their keys.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{PolicyArgs, print_diagnostics};

#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Where to write the bundle.
    #[arg(short, long, value_name = "BUNDLE", default_value = "policy.wbundle")]
    pub output: PathBuf,
    /// Sign the bundle with this secret key (a file written by `writ keygen`).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Writes the secret key to NAME and the public key to NAME.pub.
    #[arg(short, long, value_name = "NAME", default_value = "writ-key")]
    pub output: PathBuf,
    /// Replace existing key files (the old secret key is lost, and bundles
    /// signed with it no longer verify with the new public key).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The bundle to describe.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Also require a valid signature by this public key.
    #[arg(long, value_name = "PUBKEY")]
    pub verify: Option<PathBuf>,
}

/// Loads a bundle from disk, verifying its signature when a key is given.
pub fn load_bundle(path: &Path, verify: Option<&Path>) -> Result<writ_runtime::Runtime, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    match verify {
        Some(key) => {
            let key = writ::keys::read(key).map_err(|e| e.to_string())?;
            writ_runtime::Runtime::from_bytes_verified(&bytes, &key).map_err(|e| e.to_string())
        }
        None => writ_runtime::Runtime::from_bytes(&bytes).map_err(|e| e.to_string()),
    }
}

pub fn compile(args: &CompileArgs) -> ExitCode {
    let started = std::time::Instant::now();
    let comp = args.policy.compile();
    print_diagnostics(&comp, false);
    let Some(set) = comp.checked_set() else {
        eprintln!("error: the policy has errors; no bundle written");
        return ExitCode::FAILURE;
    };
    let key = match args.sign.as_deref().map(writ::keys::read).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sources = comp.owned_sources();
    let bytes = match writ::bundle::compile_with(set, &sources, key.as_ref(), &comp.programs) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&args.output, &bytes) {
        eprintln!("error: cannot write {}: {e}", args.output.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "compiled {} rules into {} ({} bytes{}) in {:.1} ms",
        set.rules.len(),
        args.output.display(),
        bytes.len(),
        if key.is_some() { ", signed" } else { "" },
        started.elapsed().as_secs_f64() * 1000.0
    );
    ExitCode::SUCCESS
}

pub fn keygen(args: &KeygenArgs) -> ExitCode {
    let public_path = PathBuf::from(format!("{}.pub", args.output.display()));
    if !args.force {
        for path in [&args.output, &public_path] {
            if path.exists() {
                eprintln!(
                    "error: `{}` exists; writ keygen does not replace keys (bundles signed with the old key would no longer verify): pass --force to replace it, or choose another name with -o",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let (secret, public) = match writ::bundle::keygen() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (path, key, private) in [(&args.output, secret, true), (&public_path, public, false)] {
        if let Err(e) = write_key(
            path,
            &format!("{}\n", writ::keys::to_hex(&key)),
            private,
            args.force,
        ) {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "wrote the secret key to {} (readable by you only; keep it private) and the public key to {}",
        args.output.display(),
        public_path.display()
    );
    ExitCode::SUCCESS
}

/// Writes a key file: a new file unless `replace`; a secret key readable
/// and writable by its owner only (mode 0600 on Unix, set at creation, so
/// it is never readable by others, and again when an existing file is
/// replaced).
fn write_key(path: &Path, text: &str, private: bool, replace: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if replace {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        if private {
            open.mode(0o600);
        }
        let mut file = open.open(path)?;
        if private {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(text.as_bytes())
    }
    #[cfg(not(unix))]
    {
        let _ = private;
        open.open(path)?.write_all(text.as_bytes())
    }
}

pub fn inspect(args: &InspectArgs) -> ExitCode {
    let bytes = match std::fs::read(&args.bundle) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.bundle.display());
            return ExitCode::FAILURE;
        }
    };
    let loaded = match &args.verify {
        Some(_) => load_bundle(&args.bundle, args.verify.as_deref()).map(|_| ()),
        None => writ_runtime::Runtime::from_bytes(&bytes)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = loaded {
        eprintln!("error: {}: {e}", args.bundle.display());
        return ExitCode::FAILURE;
    }
    let (header, model) = match (
        writ_runtime::read_header(&bytes),
        writ_runtime::read_model(&bytes),
    ) {
        (Ok(h), Ok(m)) => (h, m),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {}: {e}", args.bundle.display());
            return ExitCode::FAILURE;
        }
    };
    let globs = model
        .rules
        .iter()
        .flat_map(|r| r.actions.iter().chain(&r.targets))
        .filter(|p| matches!(p, writ_runtime::model::Pattern::Glob(_)))
        .count();
    outln!("bundle:        {}", args.bundle.display());
    outln!("format:        {}", header.format_version);
    outln!("writ version:  {}", header.writ_version);
    outln!("revision:      {}", writ::keys::to_hex(&header.revision));
    outln!("policies:      {}", model.policies.join(", "));
    outln!("rules:         {}", model.rules.len());
    outln!("agents/roles:  {}", model.agents.len());
    outln!("delegations:   {}", model.graph.len());
    outln!("globs:         {globs} patterns need a glob program");
    outln!("time zone:     {}", model.settings.timezone);
    outln!(
        "size:          {} bytes ({} body)",
        bytes.len(),
        header.body_len
    );
    outln!(
        "signature:     {}",
        match (&args.verify, header.signed) {
            (Some(_), _) => "signed, verified",
            (None, true) => "signed (not verified: pass --verify PUBKEY)",
            (None, false) => "none",
        }
    );
    ExitCode::SUCCESS
}
