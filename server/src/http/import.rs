//! `POST /v1/import/customers`: the customer import (see `crate::import`) over HTTP.
//!
//! The body is the CSV file itself (`Content-Type: text/csv`); everything else is in the query:
//! `dry_run=true` validates only, `owner=EMAIL` owns new customers whose row names none, and
//! `map.FIELD=HEADER` reads FIELD from the column HEADER (`map.name=Company&map.phone=Tel`;
//! `map.phone=` ignores a column the defaults would read). The answer is the
//! [`ImportReport`](crate::import::ImportReport): counts, the mapping used and every row's
//! status with its errors.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, Auth};
use crate::app::AppState;
use crate::import::{self, Event, ImportError, ImportOptions, ImportReport};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use fieldsync_sync::Role;

/// The query, read as pairs so `map.*` can name any field.
fn options(params: Vec<(String, String)>) -> Result<ImportOptions, ApiError> {
    let mut opts = ImportOptions::default();
    for (k, v) in params {
        if let Some(field) = k.strip_prefix("map.") {
            opts.map.push((field.to_owned(), v));
            continue;
        }
        match k.as_str() {
            "dry_run" => {
                opts.dry_run = match v.to_lowercase().as_str() {
                    "" | "1" | "true" | "yes" => true,
                    "0" | "false" | "no" => false,
                    _ => {
                        return Err(ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_query",
                            format!("dry_run must be true or false, not '{v}'."),
                        ));
                    }
                }
            }
            "owner" => opts.default_owner = Some(v),
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_parameter",
                    format!(
                        "'{other}' is not a parameter of the import; use dry_run, owner and map.FIELD=HEADER."
                    ),
                ));
            }
        }
    }
    Ok(opts)
}

/// `POST /v1/import/customers?dry_run=&owner=&map.FIELD=HEADER`, body `text/csv`.
pub async fn import_customers(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    if !matches!(auth.caller.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden(
            "forbidden",
            "Only admins and managers can import customers.",
        ));
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = ctype.split(';').next().unwrap_or("").trim();
    if !matches!(essence, "text/csv" | "application/csv" | "text/plain") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the CSV file itself as the body, with 'Content-Type: text/csv'.",
        ));
    }
    let opts = options(params)?;
    let tenant = auth.caller.tenant;
    let mut on_event = |e: Event<'_>| {
        if let Event::Pushed(out) = e {
            state.announce_push(tenant, out);
        }
    };
    match import::import_customers(
        state.store.as_ref(),
        &auth.caller,
        &body,
        &opts,
        &mut on_event,
    )
    .await
    {
        Ok(report) => Ok(Json(report)),
        Err(ImportError::Invalid(r)) => {
            let status = match r.code.as_str() {
                "file_too_large" | "too_many_rows" => StatusCode::PAYLOAD_TOO_LARGE,
                "forbidden" => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            };
            Err(ApiError::new(status, &r.code, r.message))
        }
        Err(ImportError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_become_options() {
        let o = options(vec![
            ("dry_run".into(), "true".into()),
            ("map.name".into(), "Company".into()),
            ("owner".into(), "rep@acme.test".into()),
        ])
        .expect("options");
        assert!(o.dry_run);
        assert_eq!(o.map, vec![("name".to_owned(), "Company".to_owned())]);
        assert_eq!(o.default_owner.as_deref(), Some("rep@acme.test"));
        let e = options(vec![("dryrun".into(), "1".into())]).expect_err("unknown");
        assert_eq!(e.code, "unknown_parameter");
        let e = options(vec![("dry_run".into(), "maybe".into())]).expect_err("bad bool");
        assert_eq!(e.code, "invalid_query");
    }
}
