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
hostile input (unterminated quotes and comments run to the end and are replaced). Block comments nest in
PostgreSQL mode, as the SQL standard has it, and not in MySQL mode. Bytes are decoded as UTF-8 with
replacement characters, never raising, and lone surrogates in text become U+FFFD: the result is always
valid UTF-8, as OTLP needs.

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
# Unterminated, these run to the end, a last lone backslash included.
_STRING_BACKSLASH = r"'[^'\\]*(?:(?:\\.|'')[^'\\]*)*(?:'|\\?\Z)"
_DOUBLE_STRING_BACKSLASH = r'"[^"\\]*(?:(?:\\.|"")[^"\\]*)*(?:"|\\?\Z)'
# Letters, _ and every character from \x80 on but the Unicode spaces (those str.split() splits on: a
# number after a no-break space must not hide in a name and show once the spaces are collapsed).
_IDENTIFIER_START = (
    r"A-Za-z_\x80-\x84\x86-\x9f\xa1-\u167f\u1681-\u1fff\u200b-\u2027\u202a-\u202e\u2030-\u205e\u2060-\u2fff"
    r"\u3001-\U0010ffff"
)


def _scanner(mysql: bool) -> re.Pattern[str]:
    parts = [
        # A hint is kept only when closed: an unclosed one is a comment running to the end.
        r"(?P<hint>/\*\+.*?\*/)",
        r"(?P<comment>/\*.*?(?:\*/|\Z)|--[^\n]*" + (r"|\#[^\n]*" if mysql else "") + ")",
        # The tag group always takes part (maybe empty): a back reference to a group that did not take
        # part never matches, and $$..$$ would run to the end.
        rf"(?P<dollar>\$(?P<tag>(?:[{_IDENTIFIER_START}][0-9{_IDENTIFIER_START}]*)?)\$.*?(?:\$(?P=tag)\$|\Z))",
        # E'..', and every string where backslash escapes (all of MySQL's, N'..' too) ...
        r"(?P<escaped>[eE]" + _STRING_BACKSLASH + ("|[nN]?" + _STRING_BACKSLASH if mysql else "") + ")",
        # ... then N'..', X'..', B'..', U&'..' and plain '..'.
        r"(?P<string>(?:[nNxXbB]|[uU]&)?" + _STRING + ")",
        # In MySQL "..." is a string (unless ANSI_QUOTES); elsewhere a quoted identifier. Identifiers
        # are kept only when closed: an unclosed quote is left alone and the text after it scanned.
        r"(?P<dstring>" + _DOUBLE_STRING_BACKSLASH + ")" if mysql else r'(?P<quoted>"[^"]*(?:""[^"]*)*")',
        r"(?P<backtick>`[^`]*`)",
        # ?NNN is sqlite's numbered form; a ? left by a number glued to a name ("1e" -> "?e") stays apart.
        r"(?P<placeholder>[$:@][A-Za-z0-9_]+|\?[0-9]+|%\([^)]*\)s|%s)",
        rf"(?P<word>[{_IDENTIFIER_START}][0-9${_IDENTIFIER_START}]*)",
        # Hex, binary (MySQL, PostgreSQL 16), octal and digit groups with _ (PostgreSQL 16) too.
        r"(?P<number>0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+"
        r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)",
        r"(?P<space>\s+)",
    ]
    return re.compile("|".join(parts), re.DOTALL)


_SCANNERS = {False: _scanner(False), True: _scanner(True)}
_BOOLEANS = frozenset({"true", "false"})
_IN_LIST = re.compile(r"(\bIN\s*\()\s*(\?|%s)(?:\s*,\s*(?:\?|%s))+\s*\)", re.IGNORECASE)
_VALUE = r"(?:\?|%s)(?:::[A-Za-z_][A-Za-z0-9_]*(?:\[\])?)?"  # a literal or placeholder, maybe cast
_GROUP = rf"\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)"
_VALUES = re.compile(rf"(\bVALUES\s*{_GROUP})(?:\s*,\s*{_GROUP})+", re.IGNORECASE)


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
    # re.sub is the faster path; the loop is needed only where a PostgreSQL comment may nest.
    text = _scan(statement) if not mysql and "/*" in statement else _SCANNERS[mysql].sub(_replace, statement)
    # Runs of spaces left by removed comments, then the collapsed lists.
    text = " ".join(text.split())
    text = _IN_LIST.sub(r"\1\2)", text)
    text = _VALUES.sub(r"\1", text)
    if not text.isascii():
        # A lone surrogate (text decoded with "surrogateescape", or a statement the driver will refuse)
        # has no UTF-8 form: the span could not be exported, nor any other span of its batch.
        text = _SURROGATE.sub("\ufffd", text)
    return text + " …" if truncated else text


_COMMENT_MARK = re.compile(r"/\*|\*/")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _scan(statement: str) -> str:
    """The PostgreSQL substitution where block comments nest: ``/* a /* b */ c */`` is one comment."""
    scanner, out, pos = _SCANNERS[False], [], 0
    while (match := scanner.search(statement, pos)) is not None:
        out.append(statement[pos : match.start()])
        if match.lastgroup == "comment" and match.group().startswith("/*"):
            out.append(" ")
            pos = _comment_end(statement, match.start())
        else:
            out.append(_replace(match))
            pos = match.end()
    out.append(statement[pos:])
    return "".join(out)


def _comment_end(statement: str, start: int) -> int:
    """Where the block comment opened at ``start`` ends, counting the ones nested in it."""
    depth = 0
    for mark in _COMMENT_MARK.finditer(statement, start):
        depth += 1 if mark.group() == "/*" else -1
        if depth == 0:
            return mark.end()
    return len(statement)


# ---------------------------------------------------------------------------------------------------
# Summary: operation and main table

# One part of a name, quoted or not; a token is a dotted name (any part quoted) or a parenthesis.
_PART = rf'"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[{_IDENTIFIER_START}][0-9${_IDENTIFIER_START}]*'
_NAME_PART = re.compile(_PART)
_TOKEN = re.compile(rf"(?:{_PART})(?:\s*\.\s*(?:{_PART}))*|[()]")
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
) | {"CONCURRENTLY"}  # CREATE INDEX CONCURRENTLY name
_OBJECT_MODIFIERS = frozenset(
    {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "UNLOGGED", "GLOBAL", "LOCAL", "MATERIALIZED"}
)


def _unquote(name: str) -> str:
    return ".".join(_unquote_part(part.group()) for part in _NAME_PART.finditer(name))


def _unquote_part(part: str) -> str:
    if part[:1] == '"':
        return part[1:-1].replace('""', '"')
    return part[1:-1] if part[:1] in ("`", "[") else part


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
    # The depth of the first word is the statement's: (SELECT ...) UNION (...) reads as SELECT ...
    operation, base = words[0]
    start = 1
    if operation.upper() == "WITH":
        main = next(
            (i for i, (w, d) in enumerate(words) if i and d == base and w.upper() in _MAIN_AFTER_WITH), None
        )
        if main is None:
            return operation, None, operation
        operation, start = words[main][0], main + 1
    if operation.upper() in _OBJECT_STATEMENTS:
        return _object_summary(operation, words[start:])
    table = _table(operation.upper(), words[start:], base)
    summary = f"{operation} {table}" if table else operation
    return operation, table, summary[:MAX_SUMMARY]


def _table(operation: str, words: list[tuple[str, int]], base_depth: int) -> str | None:
    if operation not in _TABLE_AFTER:
        return None
    marker = _TABLE_AFTER[operation]
    i = 0
    if marker is not None:
        found = next((j for j, (w, d) in enumerate(words) if d == base_depth and w.upper() == marker), None)
        if found is None:
            return None
        i = found + 1
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
    # CREATE INDEX ON t (a): an index without a name.
    name = _unquote(rest[i]) if i < len(rest) and named and rest[i].upper() != "ON" else None
    table = name if kind.upper() == "TABLE" else None
    summary = f"{operation} {kind} {name}" if name else f"{operation} {kind}"
    return operation, table, summary[:MAX_SUMMARY]
