//! `GET /openapi.json`: the HTTP API described for people and generators. Hand-written, kept
//! next to the router; the sync payloads are specified in `sync/PROTOCOL.md`.

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, auth: bool, body: Option<&str>, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {
            "200": { "description": ok },
            "4XX": { "description": "Client error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        }
    });
    if auth {
        o["security"] = json!([{ "bearer": [] }]);
    }
    if let Some(b) = body {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{b}") } } } });
    }
    o
}

pub async fn openapi() -> Json<Value> {
    let obj = |props: Value, required: Value| json!({ "type": "object", "properties": props, "required": required });
    Json(json!({
        "openapi": "3.1.0",
        "info": { "title": "fieldsync", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Offline-first CRDT sync for field work. Errors are {\"error\": code, \"message\": sentence}. Sync messages: see sync/PROTOCOL.md." },
        "paths": {
            "/healthz": { "get": op("Liveness and backend", false, None, "Server is up") },
            "/metrics": { "get": op("Request and byte counters since start (no tenant data)", false, None, "{requests, bytes_in, bytes_out}") },
            "/openapi.json": { "get": op("This document", false, None, "OpenAPI document") },
            "/v1/auth/login": { "post": op("Password login for a device; returns tokens (429 too_many_attempts after 5 wrong passwords in 15 minutes)", false, Some("LoginRequest"), "TokenResponse") },
            "/v1/auth/refresh": { "post": op("Exchange a refresh token (single use) for a new pair", false, Some("RefreshRequest"), "TokenResponse") },
            "/v1/me": { "get": op("The caller", true, None, "User, tenant, device and role") },
            "/v1/sync/push": { "post": op("Push Automerge changes for many documents; idempotent per batch_id", true, Some("PushRequest"), "PushResponse: one result per document") },
            "/v1/sync/pull": { "post": op("Pull a page of changes since a cursor", true, Some("PullRequest"), "PullResponse") },
            "/v1/sync/repair": { "post": op("Compare document heads and list what differs", true, Some("RepairRequest"), "RepairResponse") },
            "/v1/sync/repair/sync": { "post": op("One round of Automerge sync for differing documents", true, Some("RepairSyncRequest"), "RepairSyncResponse") },
            "/v1/sync/live": { "get": op("WebSocket: server notices (hello, changed, revoked)", true, None, "101 Switching Protocols") },
            "/v1/customers": { "get": op("Customers the caller may read (projection)", true, None, "List of customers") },
            "/v1/customers/{id}": { "get": op("One customer with contacts", true, None, "Customer") },
            "/v1/projects": { "get": op("Projects the caller may read", true, None, "List of projects") },
            "/v1/projects/{id}": { "get": op("One project with sites, members and milestones", true, None, "Project") },
            "/v1/records/{id}": { "get": op("The merged record with conflicts and heads", true, None, "Record") },
            "/v1/admin/users": {
                "get": op("Users of the tenant (admin)", true, None, "Users"),
                "post": op("Create a user (admin)", true, Some("NewUser"), "Created user")
            },
            "/v1/admin/users/{id}/disable": { "post": op("Disable a user and revoke their devices (admin)", true, None, "204") },
            "/v1/admin/devices": { "get": op("Devices of the tenant (admin)", true, None, "Devices") },
            "/v1/admin/devices/{id}/revoke": { "post": op("Revoke a device (admin)", true, None, "204") }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": {
                "Error": obj(json!({ "error": {"type": "string"}, "message": {"type": "string"} }), json!(["error", "message"])),
                "LoginRequest": obj(json!({ "tenant": {"type": "string"}, "email": {"type": "string"}, "password": {"type": "string"},
                                            "device_id": {"type": "string", "format": "uuid"}, "device_name": {"type": "string"} }), json!(["tenant", "email", "password"])),
                "RefreshRequest": obj(json!({ "refresh_token": {"type": "string"} }), json!(["refresh_token"])),
                "NewUser": obj(json!({ "email": {"type": "string"}, "password": {"type": "string"},
                                       "role": {"enum": ["field_rep", "manager", "site_manager", "hr", "admin"]}, "manager_email": {"type": "string"} }), json!(["email", "password", "role"])),
                "PushRequest": obj(json!({ "v": {"const": 1}, "batch_id": {"type": "string", "format": "uuid"},
                    "docs": {"type": "array", "items": obj(json!({ "doc_id": {"type": "string", "format": "uuid"}, "kind": {"type": "string"},
                        "changes": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}} }), json!(["doc_id", "kind", "changes"]))} }), json!(["v", "batch_id", "docs"])),
                "PullRequest": obj(json!({ "v": {"const": 1}, "cursor": {"type": ["string", "null"]}, "max_bytes": {"type": "integer"} }), json!(["v"])),
                "RepairRequest": obj(json!({ "v": {"const": 1}, "docs": {"type": "array", "items": obj(json!({ "doc_id": {"type": "string"}, "heads": {"type": "array", "items": {"type": "string"}} }), json!(["doc_id", "heads"]))} }), json!(["v", "docs"])),
                "RepairSyncRequest": obj(json!({ "v": {"const": 1}, "docs": {"type": "array", "items": obj(json!({ "doc_id": {"type": "string"}, "message": {"type": ["string", "null"], "contentEncoding": "base64"} }), json!(["doc_id"]))} }), json!(["v", "docs"]))
            }
        }
    }))
}
