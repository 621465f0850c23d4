//! `proofsheet-web`: serves the studio app (the default), or prepares the
//! database with `migrate` and `seed-demo`.

use std::process::ExitCode;

use proofsheet_config::Config;

const USAGE: &str = "usage: proofsheet-web [serve | migrate | seed-demo]";

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("proofsheet-web: {e}");
            return ExitCode::from(2);
        }
    };
    proofsheet_telemetry::init("web", config.log_format);

    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    let outcome = match command.as_str() {
        "serve" => proofsheet_web::serve(config).await,
        "migrate" => proofsheet_web::demo::migrate(&config).await,
        "seed-demo" => proofsheet_web::demo::seed(config).await,
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("proofsheet-web: unknown command '{other}'\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "proofsheet-web {command} failed");
            eprintln!("proofsheet-web {command} failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
