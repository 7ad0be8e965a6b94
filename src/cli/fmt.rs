//! `writ fmt`: format `.writ` files in place, or check that they are.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use writ::lang::fmt::{FormatError, format};
use writ_diagnostics::SourceMap;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `.writ` files to format in place; `-` reads stdin and writes stdout.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Change nothing; exit 1 if a file is not formatted (for CI).
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &Args) -> ExitCode {
    let mut failed = false;
    for path in &args.files {
        if !one(path, args.check) {
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn one(path: &Path, check: bool) -> bool {
    let stdin = path == Path::new("-");
    let name = if stdin {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    if !stdin && !writ::lang::is_writ_file(&name) {
        eprintln!(
            "error: {name}: formats `.writ` files only; to turn a YAML policy into the writ language, run `writ convert {name} --to writ`"
        );
        return false;
    }
    let text = if stdin {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("error: cannot read stdin: {e}");
            return false;
        }
        s
    } else {
        match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {name}: {e}");
                return false;
            }
        }
    };
    let stem = Path::new(&name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy")
        .to_owned();
    match format(&text, &stem) {
        Ok(out) => {
            if stdin {
                out!("{out}");
                return true;
            }
            if out == text {
                return true;
            }
            if check {
                eprintln!("error: {name} is not formatted");
                print_first_change(&text, &out);
                return false;
            }
            match std::fs::write(path, &out) {
                Ok(()) => {
                    eprintln!("formatted {name}");
                    true
                }
                Err(e) => {
                    eprintln!("error: cannot write {name}: {e}");
                    false
                }
            }
        }
        Err(FormatError::Syntax(diags)) => {
            let mut map = SourceMap::new();
            map.add(name.clone(), text);
            let color = super::stderr_color();
            for d in &diags {
                eprint!("{}", writ::render::to_text(d, &map, color));
            }
            eprintln!("error: {name} has syntax errors; fix them first");
            false
        }
        Err(FormatError::MeaningChanged(why)) => {
            eprintln!(
                "error: refusing to format {name}: the result would not mean the same ({why}). This is a bug in writ; the file is unchanged."
            );
            false
        }
    }
}

fn print_first_change(before: &str, after: &str) {
    let (a, b): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    let n = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    eprintln!("  first difference at line {}:", n + 1);
    if let Some(l) = a.get(n) {
        eprintln!("  - {l}");
    }
    if let Some(l) = b.get(n) {
        eprintln!("  + {l}");
    }
}
