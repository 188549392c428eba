"""Attribute names from the stable OpenTelemetry semantic conventions that autotrace records.

HTTP: https://opentelemetry.io/docs/specs/semconv/http/http-spans/ (stable since 1.23). Kept as plain
constants so the hot path pays one global lookup, and so one place says which names we emit.
"""

from __future__ import annotations

HTTP_REQUEST_METHOD = "http.request.method"
HTTP_REQUEST_METHOD_ORIGINAL = "http.request.method_original"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_ROUTE = "http.route"
HTTP_REQUEST_HEADER = "http.request.header."  # + lower-case header name
HTTP_RESPONSE_HEADER = "http.response.header."
HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"
URL_FULL = "url.full"
URL_PATH = "url.path"
URL_QUERY = "url.query"
URL_SCHEME = "url.scheme"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
CLIENT_ADDRESS = "client.address"
CLIENT_PORT = "client.port"
NETWORK_PEER_ADDRESS = "network.peer.address"
NETWORK_PROTOCOL_VERSION = "network.protocol.version"
USER_AGENT_ORIGINAL = "user_agent.original"
ERROR_TYPE = "error.type"

# The methods the HTTP conventions call known (RFC 9110 and PATCH, RFC 5789); any other is "_OTHER".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
OTHER_METHOD = "_OTHER"

# Databases: https://opentelemetry.io/docs/specs/semconv/db/database-spans/ (stable since 1.33).
DB_SYSTEM_NAME = "db.system.name"
DB_NAMESPACE = "db.namespace"
DB_QUERY_TEXT = "db.query.text"
DB_QUERY_SUMMARY = "db.query.summary"
DB_OPERATION_NAME = "db.operation.name"
DB_OPERATION_BATCH_SIZE = "db.operation.batch.size"
DB_COLLECTION_NAME = "db.collection.name"
DB_RESPONSE_STATUS_CODE = "db.response.status_code"
