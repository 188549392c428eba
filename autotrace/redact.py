"""Redaction: keep credentials and secrets out of spans. Pure functions, no configuration reads.

Header values named in ``SENSITIVE_HEADERS`` (or by the user) become ``[REDACTED]``; query parameter
values named in ``SENSITIVE_QUERY_PARAMETERS`` (or by the user) become ``REDACTED``, the value the HTTP
semantic conventions prescribe for ``url.query``. Names are compared case-insensitively.
"""

from __future__ import annotations

REDACTED_HEADER = "[REDACTED]"
REDACTED_QUERY = "REDACTED"

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-xsrf-token",
    }
)

# The conventions' list (signed-URL parameters), then names that commonly carry secrets.
SENSITIVE_QUERY_PARAMETERS = frozenset(
    {
        "awsaccesskeyid",
        "signature",
        "sig",
        "x-goog-signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "auth",
        "session",
        "sessionid",
    }
)


# A captured header whose name contains one of these is redacted too: X-Session-Id, X-Amz-Security-Token,
# X-Vault-Token, X-Client-Secret, X-User-Password, Sec-Session-… (names are lower-case here).
SENSITIVE_HEADER_PARTS = ("auth", "cookie", "session", "token", "secret", "passw", "api-key", "apikey")


def header_value(name: str, value: str, extra: frozenset[str] = frozenset()) -> str:
    """``value``, or ``[REDACTED]`` when ``name`` (lower-case) is sensitive."""
    if name in SENSITIVE_HEADERS or name in extra or any(part in name for part in SENSITIVE_HEADER_PARTS):
        return REDACTED_HEADER
    return value


def query(text: str, extra: frozenset[str] = frozenset()) -> str:
    """The query string with the values of sensitive parameters replaced; everything else kept as sent."""
    if not text or "=" not in text:
        return text
    parts = text.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, sep, _ = part.partition("=")
        if sep and _is_sensitive_parameter(name, extra):
            parts[i] = f"{name}={REDACTED_QUERY}"
            changed = True
    return "&".join(parts) if changed else text


def _is_sensitive_parameter(name: str, extra: frozenset[str]) -> bool:
    low = name.lower()
    if "%" in low or "+" in low:
        from urllib.parse import unquote_plus

        low = unquote_plus(low)
    return low in SENSITIVE_QUERY_PARAMETERS or low in extra


def url_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part (kept as ``REDACTED:REDACTED@``, as the conventions say)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return url
    host = authority.rpartition("@")[2]
    return f"{scheme}://REDACTED:REDACTED@{host}{slash}{tail}"


def url(text: str, extra: frozenset[str] = frozenset()) -> str:
    """A URL fit for ``url.full``: no credentials, sensitive query values replaced, fragment kept."""
    text = url_credentials(text)
    base, question, rest = text.partition("?")
    if not question:
        return text
    query_part, hash_, fragment = rest.partition("#")
    return f"{base}?{query(query_part, extra)}{hash_}{fragment}"
