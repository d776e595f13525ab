//! One shared SDK configuration for every runbook: the standard chain (environment,
//! profile, role), `AWS_ENDPOINT_URL` for the local account, rustls with ring as the only
//! TLS stack, and the SDK's standard retry mode with backoff for throttling.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;

/// Attempts per call, first one included. Throttling (`ThrottlingException`,
/// `RequestLimitExceeded`) and 5xx answers are retried with jittered backoff.
pub const MAX_ATTEMPTS: u32 = 5;

pub async fn load_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::RunbookError;

/// Error codes AWS uses for "slow down": the SDK already retried them; if they still come
/// back, the state machine's Retry tries again later.
const THROTTLING_CODES: [&str; 6] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
];

/// The service's error code, when there is one (`InvalidInstanceID.NotFound`, …).
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// Maps an SDK error to ours, marking throttling, 5xx and connection failures transient.
pub fn aws_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> RunbookError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (transient, message) = match &err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("Unknown");
            let transient = THROTTLING_CODES.contains(&code)
                || code.starts_with("Internal")
                || code == "ServiceUnavailable";
            let msg = e.err().message().unwrap_or("");
            (transient, format!("{code}: {msg}"))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
            true,
            format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ),
        ),
        _ => (
            false,
            format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ),
        ),
    };
    RunbookError::Aws {
        operation,
        message,
        transient,
    }
}

/// A call that failed with `code` counts as done: AWS's answer when another writer (a
/// response running side by side) already made the change (`InvalidPermission.Duplicate`,
/// `InvalidPermission.NotFound`, `InvalidNetworkAclEntry.NotFound`).
pub fn done_if<T>(code: &str, result: Result<T, RunbookError>) -> Result<(), RunbookError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.aws_code() == Some(code) => Ok(()),
        Err(e) => Err(e),
    }
}

/// True when a `DryRun` call was answered `DryRunOperation`: it would have succeeded.
pub fn is_dry_run_ok<T, E: ProvideErrorMetadata, R>(result: &Result<T, SdkError<E, R>>) -> bool {
    matches!(result, Err(e) if error_code(e) == Some("DryRunOperation"))
}

/// Runs a mutating EC2 call that takes `DryRun`. In a dry run, `DryRunOperation` is the
/// success answer (`Ok(None)`); a service that ignored `DryRun` and answered `Ok` is an
/// error, never trusted. Otherwise `Ok(Some(output))`.
#[macro_export]
macro_rules! mutate {
    ($dry_run:expr, $op:literal, $call:expr) => {{
        let dry_run: bool = $dry_run;
        let result = $call.dry_run(dry_run).send().await;
        if dry_run {
            if $crate::aws::is_dry_run_ok(&result) {
                Ok(None)
            } else {
                match result {
                    Ok(_) => Err($crate::error::RunbookError::Aws {
                        operation: $op,
                        message: "the service ignored DryRun and may have acted".into(),
                        transient: false,
                    }),
                    Err(e) => Err($crate::aws::aws_error($op, e)),
                }
            }
        } else {
            result.map(Some).map_err(|e| $crate::aws::aws_error($op, e))
        }
    }};
}

/// S3 by path (`http://host/bucket/key`) rather than by virtual host: a local endpoint
/// (`AWS_ENDPOINT_URL`) has no DNS name per bucket. AWS itself is addressed by virtual
/// host, as the SDK does by default.
pub fn s3_path_style() -> bool {
    std::env::var_os("AWS_ENDPOINT_URL").is_some()
}
