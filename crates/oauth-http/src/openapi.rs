//! The OpenAPI 3.1 description of the admin API, served at
//! `/admin/openapi.json` without a token (it holds no secret).
//!
//! It is written next to the routes it describes, in `admin.rs`'s terms; a
//! test in `tests/admin.rs` checks that every path and method it lists is
//! served and that every route of the API is listed.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn id_param(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
}

fn list_params() -> Value {
    json!([
        { "name": "limit", "in": "query", "required": false,
          "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 } },
        { "name": "after", "in": "query", "required": false, "schema": { "type": "string" } }
    ])
}

/// The errors every authenticated operation may answer.
fn common(mut responses: Value) -> Value {
    responses["400"] = error_response("Malformed request");
    responses["401"] = error_response("Missing or wrong admin token");
    responses["503"] = error_response("The store is unavailable");
    responses
}

/// The version of the admin API this document describes (not the crate's):
/// raised when an operation changes incompatibly.
const API_VERSION: &str = "1";

/// The paths and methods the document lists, for the test that keeps it true.
#[cfg(test)]
pub(crate) const OPERATIONS: &[(&str, &str)] = &[
    ("/admin/clients", "get"),
    ("/admin/clients", "post"),
    ("/admin/clients/{id}", "get"),
    ("/admin/clients/{id}", "put"),
    ("/admin/clients/{id}", "delete"),
    ("/admin/accounts", "get"),
    ("/admin/accounts", "post"),
    ("/admin/accounts/{id}", "get"),
    ("/admin/accounts/{id}", "patch"),
    ("/admin/accounts/{id}", "delete"),
    ("/admin/accounts/{id}/grants", "get"),
    ("/admin/accounts/{id}/consents", "delete"),
    ("/admin/accounts/{id}/sessions", "delete"),
    ("/admin/grants/{id}", "delete"),
    ("/admin/backup", "post"),
];

/// The document.
pub(crate) fn document() -> Value {
    let deleted = json!({ "description": "Deleted" });
    let not_found = error_response("No such id");
    let conflict = error_response("Read-only (configuration or OCL), or a duplicate");
    json!({
        "openapi": "3.1.0",
        "info": { "title": "oauth-rs admin API", "version": API_VERSION },
        "security": [ { "admin_token": [] } ],
        "paths": {
            "/admin/clients": {
                "get": { "operationId": "listClients", "parameters": list_params(),
                         "responses": common(json!({ "200": ok("A page of clients", "ClientList") })) },
                "post": { "operationId": "createClient", "requestBody": body("ClientMetadata"),
                          "responses": common(json!({ "201": ok("Created; a confidential client's secret shown once", "Client"),
                                                      "409": conflict.clone() })) }
            },
            "/admin/clients/{id}": {
                "parameters": [ id_param("id") ],
                "get": { "operationId": "getClient",
                         "responses": common(json!({ "200": ok("The client", "Client"), "404": not_found.clone() })) },
                "put": { "operationId": "replaceClient", "requestBody": body("ClientMetadata"),
                         "responses": common(json!({ "200": ok("Replaced", "Client"), "404": not_found.clone(), "409": conflict.clone() })) },
                "delete": { "operationId": "deleteClient",
                            "responses": common(json!({ "204": deleted.clone(), "404": not_found.clone(), "409": conflict.clone() })) }
            },
            "/admin/accounts": {
                "get": { "operationId": "listAccounts",
                         "parameters": list_params().as_array().cloned().unwrap_or_default().into_iter()
                            .chain([json!({ "name": "username", "in": "query", "required": false, "schema": { "type": "string" } })])
                            .collect::<Vec<_>>(),
                         "responses": common(json!({ "200": ok("A page of accounts", "AccountList") })) },
                "post": { "operationId": "createAccount", "requestBody": body("NewAccount"),
                          "responses": common(json!({ "201": ok("Created", "Account"), "409": conflict.clone() })) }
            },
            "/admin/accounts/{id}": {
                "parameters": [ id_param("id") ],
                "get": { "operationId": "getAccount",
                         "responses": common(json!({ "200": ok("The account", "Account"), "404": not_found.clone() })) },
                "patch": { "operationId": "updateAccount", "requestBody": body("AccountPatch"),
                           "responses": common(json!({ "200": ok("Changed", "Account"), "404": not_found.clone(), "409": conflict.clone() })) },
                "delete": { "operationId": "deleteAccount",
                            "responses": common(json!({ "204": deleted.clone(), "404": not_found.clone(), "409": conflict.clone() })) }
            },
            "/admin/accounts/{id}/grants": {
                "parameters": [ id_param("id") ],
                "get": { "operationId": "listGrants", "parameters": list_params(),
                         "responses": common(json!({ "200": ok("A page of live grants", "GrantList"), "404": not_found.clone() })) }
            },
            "/admin/accounts/{id}/consents": {
                "parameters": [ id_param("id") ],
                "delete": { "operationId": "forgetConsents",
                            "responses": common(json!({ "204": deleted.clone(), "404": not_found.clone() })) }
            },
            "/admin/accounts/{id}/sessions": {
                "parameters": [ id_param("id") ],
                "delete": { "operationId": "endSessions",
                            "responses": common(json!({ "204": deleted.clone(), "404": not_found.clone() })) }
            },
            "/admin/backup": {
                "post": { "operationId": "backup",
                          "responses": common(json!({ "200": ok("A consistent copy of the store was written", "BackupDone"),
                                                      "404": error_response("No admin.backup_dir, or not a sled store") })) }
            },
            "/admin/grants/{id}": {
                "parameters": [ id_param("id") ],
                "delete": { "operationId": "revokeGrant",
                            "responses": common(json!({ "204": deleted, "404": not_found })) }
            }
        },
        "components": {
            "securitySchemes": { "admin_token": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": { "error": { "type": "string" }, "error_description": { "type": "string" } }
                },
                "ClientMetadata": {
                    "type": "object",
                    "description": "RFC 7591 client metadata; unknown members are ignored.",
                    "properties": {
                        "client_id": { "type": "string" },
                        "client_name": { "type": "string" },
                        "redirect_uris": { "type": "array", "items": { "type": "string" } },
                        "grant_types": { "type": "array", "items": { "type": "string" } },
                        "response_types": { "type": "array", "items": { "type": "string" } },
                        "scope": { "type": "string" },
                        "token_endpoint_auth_method": { "type": "string", "enum": ["none", "client_secret_basic", "client_secret_post"] },
                        "resources": { "type": "array", "items": { "type": "string" } },
                        "require_pkce": { "type": "boolean" },
                        "allowed_cors_origins": { "type": "array", "items": { "type": "string" } },
                        "post_logout_redirect_uris": { "type": "array", "items": { "type": "string" } },
                        "id_token_signed_response_alg": { "type": "string", "description": "RS256 (the default) or the server's signing_alg" },
                        "skip_consent": { "type": "boolean", "description": "a first-party client that shows no consent page; the admin API only" },
                        "jwks": { "type": "object" }
                    }
                },
                "Client": {
                    "type": "object",
                    "required": ["client_id", "client_name", "redirect_uris", "grant_types", "scope", "token_endpoint_auth_method"],
                    "properties": {
                        "client_id": { "type": "string" },
                        "client_name": { "type": "string" },
                        "redirect_uris": { "type": "array", "items": { "type": "string" } },
                        "redirect_host": { "type": "string" },
                        "grant_types": { "type": "array", "items": { "type": "string" } },
                        "response_types": { "type": "array", "items": { "type": "string" } },
                        "scope": { "type": "string" },
                        "token_endpoint_auth_method": { "type": "string" },
                        "require_pkce": { "type": "boolean" },
                        "resources": { "type": "array", "items": { "type": "string" } },
                        "allowed_cors_origins": { "type": "array", "items": { "type": "string" } },
                        "post_logout_redirect_uris": { "type": "array", "items": { "type": "string" } },
                        "id_token_signed_response_alg": { "type": "string" },
                        "skip_consent": { "type": "boolean" },
                        "source": { "type": "string", "enum": ["configuration", "ocl", "admin", "registration"] },
                        "read_only": { "type": "boolean" },
                        "client_id_issued_at": { "type": "integer" },
                        "client_secret": { "type": "string" },
                        "client_secret_expires_at": { "type": "integer" },
                        "jwks": { "type": "object" }
                    }
                },
                "ClientList": {
                    "type": "object", "required": ["items", "next"],
                    "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Client" } },
                                    "next": { "type": ["string", "null"] } }
                },
                "NewAccount": {
                    "type": "object", "required": ["username"], "additionalProperties": false,
                    "properties": {
                        "username": { "type": "string" },
                        "password": { "type": "string", "writeOnly": true },
                        "disabled": { "type": "boolean" },
                        "attributes": { "type": "object", "additionalProperties": { "type": "string" } }
                    }
                },
                "AccountPatch": {
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "username": { "type": "string" },
                        "password": { "type": "string", "writeOnly": true },
                        "disabled": { "type": "boolean" },
                        "attributes": { "type": "object", "additionalProperties": { "type": "string" } }
                    }
                },
                "Account": {
                    "type": "object", "required": ["id", "username", "disabled", "attributes"],
                    "properties": {
                        "id": { "type": "string" },
                        "username": { "type": "string" },
                        "disabled": { "type": "boolean" },
                        "attributes": { "type": "object", "additionalProperties": { "type": "string" } },
                        "source": { "type": "string", "enum": ["configuration", "admin"] }
                    }
                },
                "AccountList": {
                    "type": "object", "required": ["items", "next"],
                    "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Account" } },
                                    "next": { "type": ["string", "null"] } }
                },
                "Grant": {
                    "type": "object", "required": ["id", "client_id", "scope", "created_at", "expires_at"],
                    "properties": {
                        "id": { "type": "string" },
                        "client_id": { "type": "string" },
                        "scope": { "type": "string" },
                        "created_at": { "type": "integer" },
                        "expires_at": { "type": "integer" },
                        "resource": { "type": ["string", "null"] }
                    }
                },
                "BackupDone": {
                    "type": "object", "required": ["path", "entries"],
                    "properties": { "path": { "type": "string" }, "entries": { "type": "integer" } }
                },
                "GrantList": {
                    "type": "object", "required": ["items", "next"],
                    "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Grant" } },
                                    "next": { "type": ["string", "null"] } }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_exactly_the_operations_the_api_serves() {
        let doc = document();
        let mut listed = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
                listed.push((path.clone(), method.clone()));
            }
        }
        listed.sort();
        let mut expected: Vec<(String, String)> =
            OPERATIONS.iter().map(|(p, m)| ((*p).to_owned(), (*m).to_owned())).collect();
        expected.sort();
        assert_eq!(listed, expected);
        for (path, method) in OPERATIONS {
            let method = http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            assert!(crate::admin::serves(&path.replace("{id}", "x"), &method), "{method} {path}");
        }
    }
}
