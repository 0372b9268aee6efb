//! The `quicktalk` binary: parse configuration, then either serve until
//! SIGTERM/SIGINT, or (`quicktalk moderate`) classify stdin lines, which needs no
//! async runtime, or (`quicktalk admin grant`) change the database and exit.

use std::io::Write as _;

use clap::Parser as _;
use quicktalk::config::{self, Cli, Command};
use quicktalk::startup::{shutdown_signal, Application};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => *args,
        Some(Command::Moderate(args)) => return quicktalk::moderate::run(args.policy),
        Some(Command::Admin(args)) => return quicktalk::admin::run(args),
        None => cli.serve,
    };
    serve(args)
}

#[tokio::main]
async fn serve(args: config::ServeArgs) -> std::process::ExitCode {
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
