//! `POST /v1/keepalive` `{"uri": "…"}`: keeps a document or site alive
//! ([`crate::client::keepalive`]): every block probed, the missing ones rebuilt and
//! inserted again. A job like a fetch; when it is done its data is the JSON of
//! [`KeptAlive`] (`documents`, `probed`, `missing`, `reinserted`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::jobs::JobStatus;
use super::{error, pipeline_failure, spawn_job, ApiBackend, ApiState};
use crate::client::keepalive::{keepalive as keep, KeptAlive};

/// Block requests in flight for a keepalive: it runs beside the node's other work, and a
/// document's probes are not urgent.
pub(super) const KEEPALIVE_PARALLEL: usize = 4;

#[derive(serde::Deserialize)]
struct KeepaliveBody {
    uri: String,
}

pub(super) async fn keepalive<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, body: Bytes) -> Response {
    let body: KeepaliveBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body must be JSON {{\"uri\": \"…\"}}: {e}")),
    };
    let uri = match pamphlet_crypto::uri::split_site_path(&body.uri) {
        Ok((uri, None)) => uri,
        Ok((_, Some(_))) => {
            return error(StatusCode::BAD_REQUEST, "keepalive takes a document's or site's own URI, without a path")
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad URI: {e}")),
    };
    let id = state.jobs.create();
    let st = Arc::clone(&state);
    spawn_job(Arc::clone(&state.jobs), id, async move {
        let progress = st.jobs.fetch_progress(id);
        match keep(&st.backend, &uri, KEEPALIVE_PARALLEL.min(st.parallel.max(1)), &progress).await {
            Ok(kept) => {
                let KeptAlive { probed, missing, .. } = kept;
                let status = JobStatus::Done {
                    uri: body.uri,
                    size: 0,
                    name: None,
                    mime: Some("application/json".into()),
                    edition: None,
                    requests: probed as u64,
                    not_found: missing as u64,
                    retries: 0,
                    may_be_stale: false,
                    displaced: 0,
                };
                st.jobs.finish(id, status, serde_json::to_vec(&kept).ok());
            }
            Err(e) => st.jobs.finish(id, pipeline_failure(&e), None),
        }
    });
    Json(json!({ "job": id })).into_response()
}
