//! The `quicktalk` binary: parse configuration, start, serve until SIGTERM/SIGINT.

use std::io::Write as _;

use clap::Parser as _;
use quicktalk::config::{self, Cli, Command};
use quicktalk::startup::{shutdown_signal, Application};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    let config = match config::resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quicktalk: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    quicktalk::telemetry::init(&config.log);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("quicktalk: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = app.local_addr();
    println!("listening on http://{addr}");
    if let Some(m) = app.metrics_addr() {
        println!("metrics on http://{m}");
    }
    if let Some(stomp) = app.stomp_addr() {
        println!("stomp listening on tcp://{stomp}");
    }
    let _ = std::io::stdout().flush();
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quicktalk: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
