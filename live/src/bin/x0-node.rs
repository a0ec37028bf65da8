//! x0-node: one mesh node on this machine's interfaces. See README.md, "One node on real interfaces".

use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use x0_live::config::NodeConfig;

#[derive(Parser)]
#[command(version, about = "Run one x0tta6bl4 mesh node on real interfaces")]
struct Args {
    /// The node's config file (YAML)
    config: PathBuf,
    /// Only check the config and exit
    #[arg(long)]
    check: bool,
    /// Log level: error, warn, info, debug or trace
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
    /// Fault injection for the namespace lab (`impersonate`): start with a certificate that
    /// is not this key's, as an attacker holding only another node's public certificate
    /// would. Its neighbours refuse it; that is the point.
    #[arg(long, hide = true)]
    impostor: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_max_level(args.log_level).with_ansi(ansi).with_writer(std::io::stderr).init();
    let mut cfg = match NodeConfig::load(&args.config) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    cfg.impostor = args.impostor;
    if args.check {
        println!("{}: ok", args.config.display());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(x0_live::daemon::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
