//! `GET /v1/backup`: the platform admin's consistent online copy of the embedded store, which
//! `switchboard backup --to FILE` saves. The copy is written from one read snapshot into a
//! file beside the store (so it needs no memory of its size), unlinked once opened, and
//! streamed; the server keeps serving while it is written.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::extract::{ApiError, PlatformAdmin};
use super::{AppState, ErrorBody};

/// One backup at a time per process: each holds a snapshot and a copy of the store on disk.
static WRITING: AtomicBool = AtomicBool::new(false);

struct Writing;

impl Writing {
    fn start() -> Option<Writing> {
        (!WRITING.swap(true, Ordering::AcqRel)).then_some(Writing)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        WRITING.store(false, Ordering::Release);
    }
}

/// `GET /v1/backup`: a redb file holding every table as of one instant.
#[utoipa::path(
    get, path = "/v1/backup", tag = "backup",
    summary = "A consistent copy of the embedded store (a redb file), for `switchboard backup --to FILE`.",
    extensions(("x-min-role" = json!("platform_admin"))),
    responses(
        (status = 200, description = "The store file.", content_type = "application/octet-stream"),
        (status = 409, description = "Another backup is being written (`backup_busy`).", body = ErrorBody),
    )
)]
pub(crate) async fn backup(
    State(service): State<AppState>,
    _admin: PlatformAdmin,
) -> Result<Response, ApiError> {
    let Some(writing) = Writing::start() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "backup_busy",
            "another backup is being written; try again when it is done",
        ));
    };
    let now = jiff::Timestamp::now();
    let name = format!(
        "backup-{}-{}.redb.partial",
        std::process::id(),
        now.as_millisecond()
    );
    let path = service.data_dir.join(name);
    let store = service.store.clone();
    let target = path.clone();
    let started = std::time::Instant::now();
    let written = tokio::task::spawn_blocking(move || store.backup_to(&target))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    drop(writing);
    let contents = match written {
        Ok(contents) => contents,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(ApiError::internal(&e));
        }
    };
    let file = tokio::fs::File::open(&path).await;
    // Unlinked now: the open handle keeps the bytes until the stream ends, and nothing is
    // left behind if the client goes away.
    let _ = std::fs::remove_file(&path);
    let file = file.map_err(|e| ApiError::internal(&e))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(&e))?
        .len();
    tracing::info!(
        bytes = size,
        millis = started.elapsed().as_millis() as u64,
        contents = %contents.summary(),
        "backup written"
    );
    let filename = format!(
        "attachment; filename=\"switchboard-{}.redb\"",
        now.strftime("%Y%m%dT%H%M%SZ")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}
