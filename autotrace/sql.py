"""SQL statements made safe to store, and summarised for span names. Pure functions.

``sanitize`` replaces every literal by ``?``: strings ('' and backslash escapes, ``E''``, ``N''``,
``X''``/``B''``, ``U&''``, PostgreSQL dollar-quoting), numbers (decimal, exponent, hex), and the
booleans ``TRUE``/``FALSE``. ``IN (?, ?, ?)`` and multi-row ``VALUES (?, ?), (?, ?)`` collapse to one
group, so a statement keeps one shape whatever the number of values. Comments are removed, because a
comment is free text (people paste ids, e-mails and tokens there); optimizer hints (``/*+ ... */``) are
kept, they only name tables and indexes. Placeholders (``%s``, ``%(name)s``, ``$1``, ``?``, ``:name``)
are not literals and stay. Runs of whitespace become one space.

Bounded: at most ``MAX_SCANNED`` characters are read (the rest is dropped and marked with ``…``); the
scan is one pass of a regular expression with no nested repetition, so its time is linear even for
hostile input (unterminated quotes and comments run to the end and are replaced). Bytes are decoded as
UTF-8 with replacement characters, never raising.

``summarize`` reads the sanitized text for the operation (``SELECT``) and the main table (``users``):
``SELECT users`` is the low-cardinality span name the database conventions ask for.
"""

from __future__ import annotations

import functools
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_SCANNED = 8192
MAX_SUMMARY = 255

_STRING = r"'[^']*(?:''[^']*)*(?:'|\Z)"
_STRING_BACKSLASH = r"'[^'\\]*(?:(?:\\.|'')[^'\\]*)*(?:'|\Z)"
_DOUBLE_STRING_BACKSLASH = r'"[^"\\]*(?:(?:\\.|"")[^"\\]*)*(?:"|\Z)'


def _scanner(mysql: bool) -> re.Pattern[str]:
    parts = [
        r"(?P<hint>/\*\+.*?(?:\*/|\Z))",
        r"(?P<comment>/\*.*?(?:\*/|\Z)|--[^\n]*" + (r"|\#[^\n]*" if mysql else "") + ")",
        r"(?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$.*?(?:\$(?P=tag)\$|\Z))",
        # E'..', and every string where backslash escapes (all of MySQL's) ...
        r"(?P<escaped>[eE]" + _STRING_BACKSLASH + ("|" + _STRING_BACKSLASH if mysql else "") + ")",
        # ... then N'..', X'..', B'..', U&'..' and plain '..'.
        r"(?P<string>(?:[nNxXbB]|[uU]&)?" + _STRING + ")",
        # In MySQL "..." is a string (unless ANSI_QUOTES); elsewhere a quoted identifier.
        r"(?P<dstring>" + _DOUBLE_STRING_BACKSLASH + ")" if mysql else r'(?P<quoted>"[^"]*(?:""[^"]*)*"?)',
        r"(?P<backtick>`[^`]*`?)",
        r"(?P<placeholder>[$?:@][A-Za-z0-9_]+|%\([^)]*\)s|%s)",
        r"(?P<word>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*)",
        r"(?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)",
        r"(?P<space>\s+)",
    ]
    return re.compile("|".join(parts), re.DOTALL)


_SCANNERS = {False: _scanner(False), True: _scanner(True)}
_BOOLEANS = frozenset({"true", "false"})
_IN_LIST = re.compile(r"(\bIN\s*\()\s*(\?|%s)(?:\s*,\s*(?:\?|%s))+\s*\)", re.IGNORECASE)
_VALUE = r"(?:\?|%s)(?:::[A-Za-z_][A-Za-z0-9_]*(?:\[\])?)?"  # a literal or placeholder, maybe cast
_GROUP = rf"\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)"
_VALUES = re.compile(rf"({_GROUP})(?:\s*,\s*{_GROUP})+")


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in ("escaped", "string", "dstring", "dollar", "number"):
        return "?"
    if kind == "word":
        word = match.group()
        return "?" if word.lower() in _BOOLEANS else word
    if kind == "space":
        return " "
    if kind == "comment":
        return " "
    return match.group()


def sanitize(statement: str | bytes | Any, mysql: bool = False) -> str:
    """``statement`` with every literal replaced by ``?``, comments removed (see the module doc)."""
    if isinstance(statement, (bytes, bytearray, memoryview)):
        statement = bytes(statement[: MAX_SCANNED * 4]).decode("utf-8", "replace")
    elif not isinstance(statement, str):
        statement = str(statement)
    return _sanitize(statement, mysql) if len(statement) <= 4096 else _sanitize_uncached(statement, mysql)


@functools.lru_cache(maxsize=256)
def _sanitize(statement: str, mysql: bool) -> str:
    return _sanitize_uncached(statement, mysql)


def _sanitize_uncached(statement: str, mysql: bool) -> str:
    truncated = len(statement) > MAX_SCANNED
    if truncated:
        statement = statement[:MAX_SCANNED]
    text = _SCANNERS[mysql].sub(_replace, statement)
    # Runs of spaces left by removed comments, then the collapsed lists.
    text = " ".join(text.split())
    text = _IN_LIST.sub(r"\1\2)", text)
    text = _VALUES.sub(r"\1", text)
    return text + " …" if truncated else text


# ---------------------------------------------------------------------------------------------------
# Summary: operation and main table

_TOKEN = re.compile(
    r'"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[A-Za-z_][A-Za-z0-9_$]*(?:\s*\.\s*(?:"(?:[^"]|"")*"|`[^`]*`|[A-Za-z_][A-Za-z0-9_$]*))*|[()]'
)
_HINT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
_MAIN_AFTER_WITH = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"})
_TABLE_AFTER = {
    "SELECT": "FROM",
    "DELETE": "FROM",
    "INSERT": "INTO",
    "REPLACE": "INTO",
    "MERGE": "INTO",
    "UPDATE": None,  # the next name
    "COPY": None,
    "TRUNCATE": None,
}
_OBJECT_STATEMENTS = frozenset({"CREATE", "DROP", "ALTER"})
_SKIP_BEFORE_NAME = frozenset(
    {"ONLY", "TABLE", "IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "QUICK", "IF", "NOT", "EXISTS"}
)
_OBJECT_MODIFIERS = frozenset(
    {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "UNLOGGED", "GLOBAL", "LOCAL", "MATERIALIZED"}
)


def _unquote(name: str) -> str:
    parts = [p.strip() for p in name.split(".")]
    return ".".join(p[1:-1] if p[:1] in ('"', "`", "[") and len(p) > 1 else p for p in parts)


def _words(tokens: list[str]) -> list[tuple[str, int]]:
    """Tokens with their parenthesis depth; parentheses themselves left out."""
    out, depth = [], 0
    for token in tokens:
        if token == "(":
            depth += 1
        elif token == ")":
            depth = max(depth - 1, 0)
        else:
            out.append((token, depth))
    return out


def _is_name(token: str) -> bool:
    return token[:1] in ('"', "`", "[") or token.upper() not in _SKIP_BEFORE_NAME


@functools.lru_cache(maxsize=256)
def summarize(sanitized: str) -> tuple[str, str | None, str]:
    """(operation, main table or None, summary) of a sanitized statement; ('', None, '') if unknown.

    The operation keeps the case it was written in (``select`` stays ``select``)."""
    tokens = _TOKEN.findall(_HINT.sub(" ", sanitized[:MAX_SCANNED]))
    if not tokens or tokens[0] == ")":
        return "", None, ""
    words = _words(tokens)
    if not words:
        return "", None, ""
    # The operation as the app wrote it (the conventions ask for no case change), compared in upper case.
    operation = words[0][0]
    start = 1
    if operation.upper() == "WITH":
        main = next(
            (i for i, (w, d) in enumerate(words) if i and d == 0 and w.upper() in _MAIN_AFTER_WITH), None
        )
        if main is None:
            return operation, None, operation
        operation, start = words[main][0], main + 1
    if operation.upper() in _OBJECT_STATEMENTS:
        return _object_summary(operation, words[start:])
    table = _table(operation.upper(), words[start:])
    summary = f"{operation} {table}" if table else operation
    return operation, table, summary[:MAX_SUMMARY]


def _table(operation: str, words: list[tuple[str, int]]) -> str | None:
    if operation not in _TABLE_AFTER:
        return None
    marker = _TABLE_AFTER[operation]
    i = 0
    if marker is not None:
        found = next((j for j, (w, d) in enumerate(words) if d == 0 and w.upper() == marker), None)
        if found is None:
            return None
        i = found + 1
    base_depth = 0
    while i < len(words):
        word, depth = words[i]
        if depth != base_depth:  # a subquery or a parenthesised list where the name should be
            return None
        if _is_name(word):
            return _unquote(word)
        i += 1
    return None


def _object_summary(operation: str, words: list[tuple[str, int]]) -> tuple[str, str | None, str]:
    rest = [w for w, d in words if d == 0]
    i = 0
    while i < len(rest) and rest[i].upper() in _OBJECT_MODIFIERS:
        i += 1
    if i >= len(rest):
        return operation, None, operation
    kind = rest[i]
    i += 1
    while i < len(rest) and rest[i].upper() in _SKIP_BEFORE_NAME:
        i += 1
    named = kind.upper() in ("TABLE", "INDEX", "VIEW", "SEQUENCE")
    name = _unquote(rest[i]) if i < len(rest) and named else None
    table = name if kind.upper() == "TABLE" else None
    summary = f"{operation} {kind} {name}" if name else f"{operation} {kind}"
    return operation, table, summary[:MAX_SUMMARY]
