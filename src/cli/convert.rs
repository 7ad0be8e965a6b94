//! `writ convert`: YAML (any dialect) → the writ language, and the writ
//! language → writ's YAML schema.

use std::path::PathBuf;
use std::process::ExitCode;

use writ::lang::{convert, fmt, is_writ_file, lexer};
use writ_diagnostics::FileId;

use super::{DialectArg, print_diagnostics};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file to convert.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The form to convert to.
    #[arg(long, value_enum)]
    pub to: Target,
    /// Read a YAML file in this dialect instead of detecting it.
    #[arg(long, value_enum)]
    pub dialect: Option<DialectArg>,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The writ language (`.writ`).
    Writ,
    /// writ's YAML schema (`writ: 1`).
    Yaml,
}

pub fn run(args: &Args) -> ExitCode {
    let comp = writ::compile_files(&[&args.file], args.dialect.map(Into::into));
    print_diagnostics(&comp, false);
    let Some(set) = comp.checked_set() else {
        eprintln!(
            "error: {} has errors; nothing converted",
            args.file.display()
        );
        return ExitCode::FAILURE;
    };
    let name = args.file.display().to_string();
    let text = comp
        .sources
        .get(FileId(0))
        .map(|f| f.text().to_owned())
        .unwrap_or_default();
    let from_writ = is_writ_file(&name);
    let comments = if from_writ {
        lexer::lex(FileId(0), &text).comments
    } else {
        convert::yaml_comments(FileId(0), &text)
    };
    let stem = args
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy")
        .to_owned();
    let converted = match args.to {
        Target::Writ if from_writ => fmt::format(&text, &stem).map_err(|e| match e {
            fmt::FormatError::Syntax(_) => "syntax errors".to_owned(),
            fmt::FormatError::MeaningChanged(why) => why,
        }),
        Target::Writ => convert::to_writ(set, &text, comments).map_err(|u| describe(&comp, &u)),
        Target::Yaml => convert::to_yaml(set, &comments).map_err(|u| describe(&comp, &u)),
    };
    let out = match converted {
        Ok(out) => out,
        Err(why) => {
            eprintln!("error: cannot convert {name}: {why}");
            return ExitCode::FAILURE;
        }
    };
    // Prove the result means what the original meant.
    let out_name = match args.to {
        Target::Writ => format!("{stem}.writ"),
        Target::Yaml => format!("{stem}.yaml"),
    };
    let check = writ::compile(
        &[writ::Source {
            name: out_name,
            text: out.clone(),
        }],
        None,
    );
    let same = check
        .checked_set()
        .is_some_and(|again| convert::same_meaning(set, again));
    if !same {
        eprintln!(
            "error: refusing to convert {name}: the result would not mean the same. This is a bug in writ."
        );
        return ExitCode::FAILURE;
    }
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &out) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        None => out!("{out}"),
    }
    ExitCode::SUCCESS
}

fn describe(comp: &writ::Compilation, u: &convert::Unsupported) -> String {
    match u.span.and_then(|s| comp.sources.location(s)) {
        Some((file, lc)) => format!("{file}:{}:{}: {}", lc.line, lc.column, u.message),
        None => u.message.clone(),
    }
}
