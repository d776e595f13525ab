//! Every runbook's Lambda `main` is the same: structured logs, then serve the handler
//! behind the Lambda runtime API, logging each failure once with the type ASL routes on.

use std::future::Future;

use lambda_runtime::{service_fn, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{logged, RunbookError};

/// Serves `handler` until the runtime stops. The handler borrows the runbook's clients.
pub async fn serve<I, O, F, Fut>(
    runbook: &'static str,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send,
    O: Serialize,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, RunbookError>>,
{
    crate::logging::init();
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<I>| async move {
        handler(event.payload).await.map_err(|e| logged(runbook, e))
    }))
    .await
}
