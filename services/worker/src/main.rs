//! `proofsheet-worker`: runs the background jobs until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use proofsheet_config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("proofsheet-worker: {e}");
            return ExitCode::from(2);
        }
    };
    proofsheet_telemetry::init("worker", config.log_format);

    match proofsheet_worker::run(config, proofsheet_telemetry::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "proofsheet-worker failed");
            eprintln!("proofsheet-worker failed: {e}");
            ExitCode::FAILURE
        }
    }
}
