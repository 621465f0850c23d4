//! The `proofsheet-portal` binary: reads the configuration from the
//! environment and runs the client portal until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use proofsheet_config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            // Logging is not set up yet: its format is part of the configuration.
            eprintln!("proofsheet-portal: {e}");
            return ExitCode::FAILURE;
        }
    };
    match proofsheet_portal::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "portal failed");
            ExitCode::FAILURE
        }
    }
}
