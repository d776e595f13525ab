//! Structured JSON logs, one line per event, as CloudWatch Logs Insights reads them.

use tracing_subscriber::EnvFilter;

/// JSON lines to stdout, level from `RUST_LOG` (default `info`). Safe to call twice.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}
