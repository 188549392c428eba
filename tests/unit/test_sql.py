"""autotrace.sql: every literal replaced, comments removed, placeholders and names kept; span summaries."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrace.sql import MAX_SCANNED, MAX_SUMMARY, sanitize, summarize

# ---------------------------------------------------------------------------------------------------
# sanitize, PostgreSQL mode (the default)

POSTGRESQL = [
    # Strings: doubled quotes, empty strings, E'' with backslash escapes, prefixes.
    ("SELECT * FROM t WHERE a = 'it''s'", "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = ''", "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = '' AND b = ''''", "SELECT * FROM t WHERE a = ? AND b = ?"),
    ("SELECT E'it\\'s' FROM t", "SELECT ? FROM t"),
    ("SELECT e'a\\\\' , 'b' FROM t", "SELECT ? , ? FROM t"),
    ("SELECT E'tab\\there' || 'x'", "SELECT ? || ?"),
    # Standard conforming strings: a backslash is an ordinary character in '...'.
    ("SELECT 'C:\\' , 'next' FROM t", "SELECT ? , ? FROM t"),
    # ... so 'a\' is a whole string and b'...' a bit string running to the end: nothing shows.
    ("SELECT 'a\\'b' FROM t", "SELECT ??"),
    ("SELECT N'national', n'x' FROM t", "SELECT ?, ? FROM t"),
    ("SELECT U&'d\\0061t\\+000061' FROM t", "SELECT ? FROM t"),
    ("SELECT u&'x' UESCAPE '!'", "SELECT ? UESCAPE ?"),
    ("SELECT 'one' 'two'", "SELECT ? ?"),
    ("SELECT '-- not a comment' FROM t", "SELECT ? FROM t"),
    ("SELECT '/* not a comment */' FROM t", "SELECT ? FROM t"),
    ("SELECT 'a; DROP TABLE t; --' FROM t", "SELECT ? FROM t"),
    ("SELECT 'line one\nline two' FROM t", "SELECT ? FROM t"),
    ("SELECT 'x' FROM t WHERE a = '🙂 emoji'", "SELECT ? FROM t WHERE a = ?"),
    # Comments: removed whatever they hold; they nest in PostgreSQL.
    ("SELECT a -- it's a comment\nFROM t", "SELECT a FROM t"),
    ("SELECT a /* it's 'quoted' */ FROM t", "SELECT a FROM t"),
    ("SELECT a/**/FROM t", "SELECT a FROM t"),
    ("SELECT a /* outer /* inner */ still outer */ FROM t", "SELECT a FROM t"),
    ("SELECT a /*/ still comment */ FROM t", "SELECT a FROM t"),
    ("SELECT a /* ** */ FROM t /* trailing */", "SELECT a FROM t"),
    ("-- leading comment\nSELECT 1", "SELECT ?"),
    ("SELECT 1 -- trailing comment", "SELECT ?"),
    ("SELECT 1--1\n, 2", "SELECT ? , ?"),
    ("SELECT a # b FROM t", "SELECT a # b FROM t"),  # # is an operator here, not a comment
    # Optimizer hints are kept.
    ("SELECT /*+ IndexScan(t idx) */ a FROM t", "SELECT /*+ IndexScan(t idx) */ a FROM t"),
    ("/*+ SeqScan(t) */ SELECT a FROM t /* user 42 */", "/*+ SeqScan(t) */ SELECT a FROM t"),
    # Dollar quoting, with and without a tag, next to $n parameters.
    ("SELECT $$it's a secret$$", "SELECT ?"),
    ("SELECT $tag$ body with $$ inside $tag$ FROM t", "SELECT ? FROM t"),
    ("SELECT $a$x$a$, $b$y$b$", "SELECT ?, ?"),
    ("SELECT $fn$ $1 $fn$, $1, $2 FROM t", "SELECT ?, $1, $2 FROM t"),
    (
        "SELECT * FROM t WHERE a = $1 AND b = $$x$$ AND c = $2",
        "SELECT * FROM t WHERE a = $1 AND b = ? AND c = $2",
    ),
    ("SELECT $$a$$$$b$$, $1", "SELECT ??, $1"),
    ("SELECT $é$secret$é$", "SELECT ?"),
    (
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
        "CREATE FUNCTION f() RETURNS int AS ? LANGUAGE sql",
    ),
    ("SELECT a$1, b$ FROM t", "SELECT a$1, b$ FROM t"),  # $ inside a name is part of the name
    # Casts.
    (
        "SELECT '42'::int, a::text, $1::uuid, ?::jsonb FROM t",
        "SELECT ?::int, a::text, $1::uuid, ?::jsonb FROM t",
    ),
    ("SELECT CAST('2020-01-01' AS date)", "SELECT CAST(? AS date)"),
    # Numbers: the sign stays (it may be an operator), digits inside names stay.
    ("SELECT -5, a-1, a - -1.5, -.5", "SELECT -?, a-?, a - -?, -?"),
    ("SELECT t1.col2, x1e5, a_1, _9 FROM t1", "SELECT t1.col2, x1e5, a_1, _9 FROM t1"),
    ("SELECT 0xFF, 0XdeadBEEF, X'FF', x'0a', B'1010', b'0'", "SELECT ?, ?, ?, ?, ?, ?"),
    ("SELECT 0b1010, 0o17, 1_000_000, 1_000.000_1", "SELECT ?, ?, ?, ?"),
    ("SELECT 1.5e-3, 1.5E+3, 2e10, .5, 5., 3.14", "SELECT ?, ?, ?, ?, ?, ?"),
    ("SELECT 1e, 42abc", "SELECT ?e, ?abc"),
    # Booleans in any case; NULL and names that merely contain "true" stay.
    ("SELECT TRUE, false, True, fAlSe", "SELECT ?, ?, ?, ?"),
    ("SELECT * FROM t WHERE a IS NULL AND b = null", "SELECT * FROM t WHERE a IS NULL AND b = null"),
    (
        "SELECT * FROM t WHERE is_true = TRUE AND true_count > 0",
        "SELECT * FROM t WHERE is_true = ? AND true_count > ?",
    ),
    # IN lists collapse to one value.
    ("SELECT * FROM t WHERE a IN ('x', 'y', 'z')", "SELECT * FROM t WHERE a IN (?)"),
    ("SELECT * FROM t WHERE a IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)", "SELECT * FROM t WHERE a IN (?)"),
    ("SELECT * FROM t WHERE a NOT IN (%s,%s ,%s)", "SELECT * FROM t WHERE a NOT IN (%s)"),
    ("SELECT * FROM t WHERE a in (?, ?)", "SELECT * FROM t WHERE a in (?)"),
    ("SELECT * FROM t WHERE a IN (1)", "SELECT * FROM t WHERE a IN (?)"),
    (
        "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = 1)",
        "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = ?)",
    ),
    # Lists that are not all bare literals of one kind keep their shape (the module's choice).
    ("SELECT * FROM t WHERE a IN ($1, $2)", "SELECT * FROM t WHERE a IN ($1, $2)"),
    ("SELECT * FROM t WHERE a IN (-1, -2)", "SELECT * FROM t WHERE a IN (-?, -?)"),
    ("SELECT * FROM t WHERE a IN (NULL, 1)", "SELECT * FROM t WHERE a IN (NULL, ?)"),
    ("SELECT * FROM t JOIN (?, ?) ON x", "SELECT * FROM t JOIN (?, ?) ON x"),
    # Multi-row VALUES collapse to one group.
    (
        "INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')",
        "INSERT INTO t (a, b) VALUES (?, ?)",
    ),
    ("INSERT INTO t VALUES (%s, %s), (%s, %s), (%s, %s)", "INSERT INTO t VALUES (%s, %s)"),
    ("INSERT INTO t VALUES ('a'::text, 1), ('b'::text, 2)", "INSERT INTO t VALUES (?::text, ?)"),
    (
        "INSERT INTO t VALUES (1, 2) , ( 3 , 4 ) ON CONFLICT (a) DO NOTHING",
        "INSERT INTO t VALUES (?, ?) ON CONFLICT (a) DO NOTHING",
    ),
    ("INSERT INTO t VALUES (1), (2), (3)", "INSERT INTO t VALUES (?)"),
    ("INSERT INTO t VALUES (now(), 1), (now(), 2)", "INSERT INTO t VALUES (now(), ?), (now(), ?)"),
    ("INSERT INTO t VALUES (NULL, 1), (2, NULL)", "INSERT INTO t VALUES (NULL, ?), (?, NULL)"),
    # Placeholders of every style stay as written.
    (
        "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c = %(other name)s",
        "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c = %(other name)s",
    ),
    ("SELECT * FROM t WHERE a = $1 AND b = $12", "SELECT * FROM t WHERE a = $1 AND b = $12"),
    ("SELECT * FROM t WHERE a = ? AND b = ?1", "SELECT * FROM t WHERE a = ? AND b = ?1"),
    (
        "SELECT * FROM t WHERE a = :name AND b = :1 AND c = @p",
        "SELECT * FROM t WHERE a = :name AND b = :1 AND c = @p",
    ),
    ("SELECT * FROM t WHERE a LIKE %s ESCAPE '\\'", "SELECT * FROM t WHERE a LIKE %s ESCAPE ?"),
    ("SELECT 'x' %% 2", "SELECT ? %% ?"),
    # Several statements in one text.
    ("SELECT 1; SELECT 'x'; UPDATE t SET a = 2;", "SELECT ?; SELECT ?; UPDATE t SET a = ?;"),
    ("BEGIN; INSERT INTO t VALUES (1); COMMIT", "BEGIN; INSERT INTO t VALUES (?); COMMIT"),
    # JSON operators are operators, not comments.
    (
        "SELECT data->>'name', data->'a'->0, data#>'{a,b}', data #>> '{c}' FROM t",
        "SELECT data->>?, data->?->?, data#>?, data #>> ? FROM t",
    ),
    (
        "SELECT * FROM t WHERE data @> '{\"k\": 1}' AND data ? 'key' AND data ?| array['a']",
        "SELECT * FROM t WHERE data @> ? AND data ? ? AND data ?| array[?]",
    ),
    ("SELECT * FROM t WHERE a#>>'{x}' = 'y' -- why\n", "SELECT * FROM t WHERE a#>>? = ?"),
    # Intervals and typed literals.
    (
        "SELECT now() - interval '1 day', INTERVAL '2 hours 30 minutes'",
        "SELECT now() - interval ?, INTERVAL ?",
    ),
    ("SELECT DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00:00+02'", "SELECT DATE ?, TIMESTAMP ?"),
    (
        "SELECT * FROM t WHERE ts > now() - interval '7' day",
        "SELECT * FROM t WHERE ts > now() - interval ? day",
    ),
    # Unicode names stay, unicode strings go.
    (
        "SELECT * FROM téléphone WHERE nom = 'Zoë' AND ville = '東京'",
        "SELECT * FROM téléphone WHERE nom = ? AND ville = ?",
    ),
    ("SELECT 名前 FROM ユーザー WHERE 年齢 = 30", "SELECT 名前 FROM ユーザー WHERE 年齢 = ?"),
    # LIKE patterns are strings.
    (
        "SELECT * FROM t WHERE a LIKE '%foo%' AND b ILIKE 'bar_' AND c SIMILAR TO '[0-9]+'",
        "SELECT * FROM t WHERE a LIKE ? AND b ILIKE ? AND c SIMILAR TO ?",
    ),
    # "..." is a name in PostgreSQL, kept whatever it holds; so are `...`.
    ('SELECT "Users"."Name", "select" FROM "Users"', 'SELECT "Users"."Name", "select" FROM "Users"'),
    ('SELECT "a""b", "it\'s", "42", "true" FROM "t 1"', 'SELECT "a""b", "it\'s", "42", "true" FROM "t 1"'),
    ("SELECT `a` FROM `t`", "SELECT `a` FROM `t`"),
    # :2 reads as a numbered placeholder (sqlite, Oracle style), so a slice's upper bound shows.
    ("SELECT arr[1], arr[1:2] FROM t", "SELECT arr[?], arr[?:2] FROM t"),
    # Whitespace, Unicode spaces too (a number after a no-break space is still a number).
    ("  SELECT\n\ta ,\r\n  b\n\nFROM   t  ", "SELECT a , b FROM t"),
    ("SELECT * FROM t WHERE id =\xa012345 AND n\u3000=\u20095", "SELECT * FROM t WHERE id = ? AND n = ?"),
    ("", ""),
    ("   \n ", ""),
]


@pytest.mark.parametrize(("statement", "expected"), POSTGRESQL)
def test_sanitize_postgresql(statement: str, expected: str) -> None:
    assert sanitize(statement) == expected


# ---------------------------------------------------------------------------------------------------
# sanitize, MySQL mode

MYSQL = [
    ("SELECT * FROM t WHERE a = 'a\\'b'", "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = 'it''s' AND b = 'x\\\\'", "SELECT * FROM t WHERE a = ? AND b = ?"),
    ("SELECT 'C:\\\\' , 'next'", "SELECT ? , ?"),
    ('SELECT "double \\" quoted", "x""y" FROM t', "SELECT ?, ? FROM t"),
    ("SELECT \"\", '' FROM t", "SELECT ?, ? FROM t"),
    ("SELECT N'it\\'s secret' FROM t", "SELECT ? FROM t"),
    (
        "SELECT _utf8mb4'abc', _binary'x' COLLATE utf8mb4_bin",
        "SELECT _utf8mb4?, _binary? COLLATE utf8mb4_bin",
    ),
    ("SELECT X'FF', 0xFF, b'101', 0b101", "SELECT ?, ?, ?, ?"),
    ("SELECT a # it's a comment\nFROM t", "SELECT a FROM t"),
    ("SELECT a -- comment\nFROM t", "SELECT a FROM t"),
    ("SELECT a /* it's */ FROM t", "SELECT a FROM t"),
    # MySQL comments do not nest: the first */ ends this one.
    ("SELECT a /* outer /* inner */ FROM t", "SELECT a FROM t"),
    ("SELECT /*+ BKA(t) */ a FROM t", "SELECT /*+ BKA(t) */ a FROM t"),
    ("SELECT /*!40001 SQL_NO_CACHE */ a FROM t", "SELECT a FROM t"),
    ("SELECT `order`, `a b`, `it's` FROM `db`.`t`", "SELECT `order`, `a b`, `it's` FROM `db`.`t`"),
    ("SELECT '#not a comment', '--x' FROM t", "SELECT ?, ? FROM t"),
    ("SELECT data->>'$.name' FROM t", "SELECT data->>? FROM t"),
    ("SELECT * FROM t WHERE a IN ('x', \"y\", 3)", "SELECT * FROM t WHERE a IN (?)"),
    ("INSERT INTO t (a, b) VALUES (1, 'a'), (2, \"b\"), (3, 'c')", "INSERT INTO t (a, b) VALUES (?, ?)"),
    (
        "INSERT INTO t VALUES (%s, %s), (%s, %s) ON DUPLICATE KEY UPDATE a = VALUES(a)",
        "INSERT INTO t VALUES (%s, %s) ON DUPLICATE KEY UPDATE a = VALUES(a)",
    ),
    ("SELECT TRUE, FALSE, NULL", "SELECT ?, ?, NULL"),
    (
        "SELECT * FROM t WHERE a = %s AND b = %(b)s AND c = ?",
        "SELECT * FROM t WHERE a = %s AND b = %(b)s AND c = ?",
    ),
    ("SELECT @@version, @user_var", "SELECT @@version, @user_var"),
    ("SELECT 1.5e-3, -2, .5", "SELECT ?, -?, ?"),
    ("SELECT * FROM t WHERE a LIKE 'x\\%y%'", "SELECT * FROM t WHERE a LIKE ?"),
    ("SELECT 1; SELECT 'two'", "SELECT ?; SELECT ?"),
    (
        "SELECT * FROM t WHERE created > NOW() - INTERVAL 1 DAY",
        "SELECT * FROM t WHERE created > NOW() - INTERVAL ? DAY",
    ),
    ("SELECT 'Zoë', 東京 FROM t", "SELECT ?, 東京 FROM t"),
    # Dollar quoting is read in MySQL mode too: over-removal, never a leak (the module's choice).
    ("SELECT $$ FROM t", "SELECT ?"),
]


@pytest.mark.parametrize(("statement", "expected"), MYSQL)
def test_sanitize_mysql(statement: str, expected: str) -> None:
    assert sanitize(statement, mysql=True) == expected


# ---------------------------------------------------------------------------------------------------
# Hostile input

UNTERMINATED = [
    ("SELECT * FROM t WHERE a = 'secret", False, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = E'secret\\' AND b = 1", False, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = U&'secret", False, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = X'secret", False, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = $$secret", False, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = $tag$secret $$ more secret", False, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t /* secret", False, "SELECT * FROM t"),
    ("SELECT * FROM t /* a /* b */ secret", False, "SELECT * FROM t"),
    ("SELECT * FROM t /*+ secret", False, "SELECT * FROM t"),
    # An unclosed quoted name is not kept whole: the text after it is scanned as SQL.
    ("SELECT * FROM t WHERE \"col = 'secret'", False, 'SELECT * FROM t WHERE "col = ?'),
    ("SELECT * FROM t WHERE `col = 'secret'", False, "SELECT * FROM t WHERE `col = ?"),
    ("SELECT * FROM t WHERE a = 'secret", True, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = 'secret\\'", True, "SELECT * FROM t WHERE a = ?"),
    ('SELECT * FROM t WHERE a = "secret', True, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = N'secret\\'", True, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t /* secret", True, "SELECT * FROM t"),
    ("SELECT * FROM t # secret", True, "SELECT * FROM t"),
    ("SELECT * FROM t WHERE `col = 'secret'", True, "SELECT * FROM t WHERE `col = ?"),
    # A last lone backslash does not end the unterminated string early.
    ('SELECT * FROM t WHERE a = "secret\\', True, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = 'secret\\", True, "SELECT * FROM t WHERE a = ?"),
    ("SELECT * FROM t WHERE a = E'secret\\", False, "SELECT * FROM t WHERE a = ?"),
]


@pytest.mark.parametrize(("statement", "mysql", "expected"), UNTERMINATED)
def test_unterminated_literal_or_comment_hides_the_rest(statement: str, mysql: bool, expected: str) -> None:
    assert sanitize(statement, mysql=mysql) == expected


@pytest.mark.parametrize("mysql", [False, True])
def test_ten_megabyte_statement_is_cut_at_max_scanned(mysql: bool) -> None:
    statement = "SELECT * FROM t WHERE a = 'secret' AND b = 12345 " * 210_000
    assert len(statement) > 10_000_000
    result = sanitize(statement, mysql=mysql)
    assert len(result) <= MAX_SCANNED + 2
    assert result.startswith("SELECT * FROM t WHERE a = ? AND b = ? SELECT")
    assert result.endswith(" …")
    assert "secret" not in result and "12345" not in result


@pytest.mark.parametrize("mysql", [False, True])
@pytest.mark.parametrize(
    "unit", ["'", "/*", "$$", "E'", '"', "`", "$a$", "/*+", "--", "#", "\\", "%(", "(?,"]
)
def test_million_repetitions_return_bounded(unit: str, mysql: bool) -> None:
    result = sanitize(unit * 1_000_000, mysql=mysql)
    assert len(result) <= MAX_SCANNED + 2
    assert result.endswith(" …")


def test_truncation_boundary() -> None:
    exact = "SELECT " + "a" * (MAX_SCANNED - 7)
    assert sanitize(exact) == exact
    assert sanitize(exact + "b") == exact + " …"
    # A literal cut by the limit is still a literal (unterminated, so replaced to the end).
    cut = "SELECT " + " " * (MAX_SCANNED - 12) + "'secretvalue'"
    assert sanitize(cut) == "SELECT ? …"


def test_bytes_are_decoded_with_replacement() -> None:
    assert sanitize(b"SELECT * FROM t WHERE a = 'x'") == "SELECT * FROM t WHERE a = ?"
    assert sanitize(bytearray(b"SELECT 1")) == "SELECT ?"
    assert sanitize(memoryview(b"SELECT 'a' FROM t")) == "SELECT ? FROM t"
    assert sanitize(b"SELECT '\xff\xfe secret' FROM t \xc3") == "SELECT ? FROM t \ufffd"
    assert sanitize("SELECT 'Zoë' FROM tëst".encode()) == "SELECT ? FROM tëst"
    assert sanitize(b'SELECT "x\\" y" FROM t', mysql=True) == "SELECT ? FROM t"


def test_large_bytes_are_bounded() -> None:
    result = sanitize(b"SELECT 'secret' " * 1_000_000)
    assert len(result) <= MAX_SCANNED + 2
    assert "secret" not in result


def test_nul_characters() -> None:
    assert sanitize("SELECT 'x\x00secret' AND \x00b FROM t") == "SELECT ? AND \x00b FROM t"
    assert sanitize(b"SELECT '\x00' FROM t") == "SELECT ? FROM t"


class Composed:
    """A query object that is not a str (like psycopg's sql.Composed): read through str()."""

    def __str__(self) -> str:
        return "SELECT * FROM t WHERE a = 'secret'"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [(Composed(), "SELECT * FROM t WHERE a = ?"), (12345, "?"), (None, "None"), (1.5, "?")],
)
def test_non_str_objects_are_read_as_text(statement: Any, expected: str) -> None:
    assert sanitize(statement) == expected


def test_str_subclass_gives_plain_str() -> None:
    class Sql(str):
        pass

    result = sanitize(Sql("SELECT 'x'"))
    assert result == "SELECT ?" and type(result) is str


# ---------------------------------------------------------------------------------------------------
# Properties

TEMPLATE = "SELECT * FROM t WHERE a = ?"


def leaked(content: str, result: str) -> set[str]:
    """The 4-character pieces of ``content`` found in ``result`` but not in the template."""
    return {
        content[i : i + 4]
        for i in range(len(content) - 3)
        if content[i : i + 4] in result and content[i : i + 4] not in TEMPLATE
    }


@settings(max_examples=300, derandomize=True)
@given(content=st.text())
def test_property_string_literal_never_leaks(content: str) -> None:
    statement = "SELECT * FROM t WHERE a = '" + content.replace("'", "''") + "'"
    result = sanitize(statement)
    assert not leaked(content, result)
    assert result == TEMPLATE


@settings(max_examples=300, derandomize=True)
@given(content=st.text())
def test_property_mysql_string_literal_never_leaks(content: str) -> None:
    escaped = content.replace("\\", "\\\\")
    single = "SELECT * FROM t WHERE a = '" + escaped.replace("'", "\\'") + "'"
    double = 'SELECT * FROM t WHERE a = "' + escaped.replace('"', '\\"') + '"'
    for statement in (single, double):
        result = sanitize(statement, mysql=True)
        assert not leaked(content, result)
        assert result == TEMPLATE


@settings(max_examples=300, derandomize=True)
@given(value=st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_property_number_literal_never_leaks(value: float) -> None:
    content = repr(value)
    for mysql in (False, True):
        result = sanitize(f"SELECT * FROM t WHERE a = {content}", mysql=mysql)
        assert not leaked(content, result)
        assert result == (TEMPLATE.replace("?", "-?") if content.startswith("-") else TEMPLATE)


MARK = "zqx"  # in every literal and comment the grammar writes, in no name
CONTENT = st.text(max_size=12).map(lambda text: f"{MARK}{text}{MARK}")
COMMON = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "VALUES", "INSERT INTO", "NULL", "t", "users",
    "col_1", "x1e5", "名前", "`bt`", "=", "<", ",", "(", ")", ";", "::int", "->>", "-", "+", "*", "/", ".",
    "%s", "%(name)s", "$1", "?", ":name", "/*+ Hint(t) */", "TRUE", "false", "IN (?, ?)", "(?, ?), (?, ?)",
]  # fmt: skip
NUMBERS = st.one_of(st.integers(min_value=0), st.floats(min_value=0, allow_infinity=False)).map(repr)


def literals(mysql: bool) -> st.SearchStrategy[str]:
    if mysql:
        escaped = CONTENT.map(lambda c: c.replace("\\", "\\\\"))
        return st.one_of(
            escaped.map(lambda c: "'" + c.replace("'", "''") + "'"),
            escaped.map(lambda c: '"' + c.replace('"', '\\"') + '"'),
            CONTENT.map(lambda c: "-- " + c.replace("\n", " ") + "\n"),
            CONTENT.map(lambda c: "# " + c.replace("\n", " ") + "\n"),
            CONTENT.map(lambda c: "/* " + c.replace("*", "") + " */"),
        )
    return st.one_of(
        CONTENT.map(lambda c: "'" + c.replace("'", "''") + "'"),
        CONTENT.map(lambda c: "E'" + c.replace("\\", "\\\\").replace("'", "\\'") + "'"),
        CONTENT.map(lambda c: "$q$" + c.replace("$", "") + "$q$"),
        CONTENT.map(lambda c: "$$" + c.replace("$", "") + "$$"),
        CONTENT.map(lambda c: "-- " + c.replace("\n", " ") + "\n"),
        CONTENT.map(lambda c: "/* " + c.replace("*", "") + " /* nested */ */"),
        st.just('"Quoted Name"'),
        st.just("#>"),
    )


def statements(mysql: bool) -> st.SearchStrategy[str]:
    token = st.one_of(st.sampled_from(COMMON), NUMBERS, literals(mysql))
    return st.lists(st.tuples(token, st.sampled_from([" ", "\n", "\t  "])), max_size=30).map(
        lambda pairs: "".join(text + space for text, space in pairs)
    )


@pytest.mark.parametrize("mysql", [False, True])
def test_property_generated_statements_leak_nothing_and_sanitize_is_idempotent(mysql: bool) -> None:
    @settings(max_examples=300, derandomize=True)
    @given(statement=statements(mysql))
    def check(statement: str) -> None:
        once = sanitize(statement, mysql=mysql)
        assert MARK not in once
        assert sanitize(once, mysql=mysql) == once

    check()


@pytest.mark.parametrize(
    ("statement", "mysql"),
    [
        ("0E$$", False),  # ?E$$ must not read as a placeholder ?E and a dollar quote
        ("1abc$$x$$", False),
        ("\xa00", False),  # 0 must not hide in a name until the spaces are collapsed
        ('"#\\', True),  # a lone trailing backslash in an unterminated MySQL string
        ("SELECT /* a /* b */ c */ 1", False),
        ("INSERT INTO t VALUES (1, 2), (3, 4)", False),
        ("SELECT * FROM t WHERE a IN (1, 2, 3)", True),
    ],
)
def test_sanitize_is_idempotent(statement: str, mysql: bool) -> None:
    once = sanitize(statement, mysql=mysql)
    assert sanitize(once, mysql=mysql) == once


@settings(max_examples=300, derandomize=True)
@given(statement=st.text(alphabet="'\"`$eE\\/*-#+?%():;, \nxa1.", max_size=40), mysql=st.booleans())
def test_property_any_text_is_sanitized_idempotently(statement: str, mysql: bool) -> None:
    once = sanitize(statement, mysql=mysql)
    assert sanitize(once, mysql=mysql) == once


# ---------------------------------------------------------------------------------------------------
# summarize

SUMMARIES = [
    ("SELECT * FROM users WHERE id = ?", ("SELECT", "users", "SELECT users")),
    ("select id from users", ("select", "users", "select users")),
    ("Select * From Users", ("Select", "Users", "Select Users")),
    ("SELECT count(*) FROM orders o JOIN users u ON u.id = o.uid", ("SELECT", "orders", "SELECT orders")),
    ("SELECT * FROM t1, t2 WHERE t1.a = t2.b", ("SELECT", "t1", "SELECT t1")),
    ("SELECT * FROM ONLY parents", ("SELECT", "parents", "SELECT parents")),
    ("SELECT * FROM public.users", ("SELECT", "public.users", "SELECT public.users")),
    ('SELECT * FROM public."Users"', ("SELECT", "public.Users", "SELECT public.Users")),
    ('SELECT * FROM "public"."Users" u', ("SELECT", "public.Users", "SELECT public.Users")),
    ('SELECT * FROM "My Table"', ("SELECT", "My Table", "SELECT My Table")),
    ('SELECT * FROM "a""b"', ("SELECT", 'a"b', 'SELECT a"b')),
    ("SELECT * FROM `shop`.`orders`", ("SELECT", "shop.orders", "SELECT shop.orders")),
    ("SELECT * FROM [dbo].[Orders]", ("SELECT", "dbo.Orders", "SELECT dbo.Orders")),
    ("SELECT * FROM täble", ("SELECT", "täble", "SELECT täble")),
    ("SELECT * FROM (SELECT * FROM t) AS s", ("SELECT", None, "SELECT")),
    ("SELECT (SELECT max(a) FROM x) FROM y", ("SELECT", "y", "SELECT y")),
    ("SELECT EXTRACT(YEAR FROM d) FROM events", ("SELECT", "events", "SELECT events")),
    ('SELECT "from" FROM t', ("SELECT", "t", "SELECT t")),
    ("SELECT ?", ("SELECT", None, "SELECT")),
    ("SELECT * FROM t;SELECT * FROM u", ("SELECT", "t", "SELECT t")),
    ("INSERT INTO items (a, b) VALUES (?, ?)", ("INSERT", "items", "INSERT items")),
    ("INSERT INTO items SELECT * FROM staging", ("INSERT", "items", "INSERT items")),
    ("insert into Items(a) values (?)", ("insert", "Items", "insert Items")),
    ("INSERT IGNORE INTO items VALUES (?)", ("INSERT", "items", "INSERT items")),
    ("INSERT items VALUES (?)", ("INSERT", None, "INSERT")),  # MySQL's INTO-less form: no table
    ("UPDATE items SET a = ? WHERE id = ?", ("UPDATE", "items", "UPDATE items")),
    ("UPDATE ONLY items SET a = ?", ("UPDATE", "items", "UPDATE items")),
    ("UPDATE LOW_PRIORITY items SET a = ?", ("UPDATE", "items", "UPDATE items")),
    ("DELETE FROM items WHERE id = ?", ("DELETE", "items", "DELETE items")),
    ("delete from sessions where expires < now()", ("delete", "sessions", "delete sessions")),
    (
        "MERGE INTO stock s USING delta d ON s.id = d.id WHEN MATCHED THEN UPDATE SET qty = d.qty",
        ("MERGE", "stock", "MERGE stock"),
    ),
    ("REPLACE INTO kv (k, v) VALUES (?, ?)", ("REPLACE", "kv", "REPLACE kv")),
    ("COPY measurements (a, b) FROM STDIN", ("COPY", "measurements", "COPY measurements")),
    ("COPY (SELECT * FROM t) TO STDOUT", ("COPY", None, "COPY")),
    ("TRUNCATE TABLE logs", ("TRUNCATE", "logs", "TRUNCATE logs")),
    ("TRUNCATE logs, audit", ("TRUNCATE", "logs", "TRUNCATE logs")),
    ("CALL refresh_stats(?)", ("CALL", None, "CALL")),
    (
        "WITH recent AS (SELECT * FROM orders WHERE ts > ?) SELECT * FROM recent",
        ("SELECT", "recent", "SELECT recent"),
    ),
    (
        "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL SELECT c.id FROM nodes c JOIN tree ON ?) "
        "SELECT * FROM tree",
        ("SELECT", "tree", "SELECT tree"),
    ),
    (
        "WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved",
        ("INSERT", "b", "INSERT b"),
    ),
    ("WITH a AS (SELECT ?), b AS (SELECT ?) UPDATE t SET x = ?", ("UPDATE", "t", "UPDATE t")),
    ("with c as (select 1) select * from c", ("select", "c", "select c")),
    ("WITH c AS (SELECT ?)", ("WITH", None, "WITH")),
    ("CREATE TABLE items (id int)", ("CREATE", "items", "CREATE TABLE items")),
    ("CREATE TABLE IF NOT EXISTS items (id int)", ("CREATE", "items", "CREATE TABLE items")),
    ("CREATE TEMPORARY TABLE tmp (a int)", ("CREATE", "tmp", "CREATE TABLE tmp")),
    ('CREATE UNLOGGED TABLE public."Cache" (a int)', ("CREATE", "public.Cache", "CREATE TABLE public.Cache")),
    ("create table items (id int)", ("create", "items", "create table items")),
    (
        "CREATE OR REPLACE VIEW active_users AS SELECT * FROM users",
        ("CREATE", None, "CREATE VIEW active_users"),
    ),
    ("CREATE MATERIALIZED VIEW mv AS SELECT ?", ("CREATE", None, "CREATE VIEW mv")),
    ("CREATE UNIQUE INDEX users_email ON users (email)", ("CREATE", None, "CREATE INDEX users_email")),
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx ON t (a)", ("CREATE", None, "CREATE INDEX idx")),
    ("CREATE INDEX ON t (a)", ("CREATE", None, "CREATE INDEX")),
    ("CREATE SEQUENCE seq", ("CREATE", None, "CREATE SEQUENCE seq")),
    ("CREATE SCHEMA reporting", ("CREATE", None, "CREATE SCHEMA")),
    ("CREATE EXTENSION IF NOT EXISTS pg_trgm", ("CREATE", None, "CREATE EXTENSION")),
    ("DROP TABLE items", ("DROP", "items", "DROP TABLE items")),
    ("DROP TABLE IF EXISTS items, other CASCADE", ("DROP", "items", "DROP TABLE items")),
    ("DROP INDEX IF EXISTS idx", ("DROP", None, "DROP INDEX idx")),
    ("DROP VIEW v", ("DROP", None, "DROP VIEW v")),
    ("ALTER TABLE items ADD COLUMN price numeric", ("ALTER", "items", "ALTER TABLE items")),
    ("ALTER TABLE IF EXISTS ONLY items DROP COLUMN a", ("ALTER", "items", "ALTER TABLE items")),
    ("ALTER TABLE `shop`.`items` ADD INDEX (a)", ("ALTER", "shop.items", "ALTER TABLE shop.items")),
    ("ALTER SEQUENCE seq RESTART", ("ALTER", None, "ALTER SEQUENCE seq")),
    ("BEGIN", ("BEGIN", None, "BEGIN")),
    ("COMMIT", ("COMMIT", None, "COMMIT")),
    ("START TRANSACTION", ("START", None, "START")),
    ("SET search_path TO public", ("SET", None, "SET")),
    ("SHOW server_version", ("SHOW", None, "SHOW")),
    ("EXPLAIN SELECT * FROM t", ("EXPLAIN", None, "EXPLAIN")),
    ("/*+ SeqScan(t) */ SELECT * FROM t", ("SELECT", "t", "SELECT t")),
    ("SELECT /*+ INDEX(t idx) */ * FROM t", ("SELECT", "t", "SELECT t")),
    ("(SELECT a FROM t) UNION (SELECT a FROM u)", ("SELECT", "t", "SELECT t")),
    ("((SELECT * FROM t))", ("SELECT", "t", "SELECT t")),
    ("", ("", None, "")),
    ("   ", ("", None, "")),
    ("?", ("", None, "")),
    (")", ("", None, "")),
    ("( )", ("", None, "")),
    ("SELECT * FROM", ("SELECT", None, "SELECT")),
    ("UPDATE", ("UPDATE", None, "UPDATE")),
    ("DROP TABLE", ("DROP", None, "DROP TABLE")),
]


@pytest.mark.parametrize(("sanitized", "expected"), SUMMARIES)
def test_summarize(sanitized: str, expected: tuple[str, str | None, str]) -> None:
    assert summarize(sanitized) == expected


@pytest.mark.parametrize(
    ("statement", "mysql", "expected"),
    [
        ("-- who: bob\nSELECT * FROM users WHERE name = 'bob'", False, ("SELECT", "users", "SELECT users")),
        ("/* a /* b */ c */ UPDATE accounts SET x = 1", False, ("UPDATE", "accounts", "UPDATE accounts")),
        (
            "# note\nINSERT INTO `shop`.`orders` VALUES (1, 'x'), (2, 'y')",
            True,
            ("INSERT", "shop.orders", "INSERT shop.orders"),
        ),
        ('SELECT "it\'s" FROM "Odd ""Name"""', False, ("SELECT", 'Odd "Name"', 'SELECT Odd "Name"')),
        ("SELECT $$ FROM fake $$ FROM real_table", False, ("SELECT", "real_table", "SELECT real_table")),
    ],
)
def test_summarize_sanitized(statement: str, mysql: bool, expected: tuple[str, str | None, str]) -> None:
    assert summarize(sanitize(statement, mysql=mysql)) == expected


def test_summary_is_bounded() -> None:
    operation, table, summary = summarize("SELECT * FROM " + "x" * 1000)
    assert (operation, len(summary)) == ("SELECT", MAX_SUMMARY)
    assert table is not None and summary == f"SELECT {table}"[:MAX_SUMMARY]


@pytest.mark.parametrize(
    "hostile", ["[" * MAX_SCANNED, '"a' * 4096, "(" * MAX_SCANNED, "WITH " + "a " * 4000]
)
def test_summarize_hostile_returns(hostile: str) -> None:
    operation, _, summary = summarize("SELECT * FROM " + hostile)
    assert operation == "SELECT" and len(summary) <= MAX_SUMMARY


@settings(max_examples=200, derandomize=True)
@given(statement=st.one_of(statements(False), st.text(max_size=60)), mysql=st.booleans())
def test_property_summary_is_bounded_and_starts_with_the_operation(statement: str, mysql: bool) -> None:
    operation, table, summary = summarize(sanitize(statement, mysql=mysql))
    assert len(summary) <= MAX_SUMMARY
    assert summary.startswith(operation)
    assert table is None or table in summary or len(summary) == MAX_SUMMARY


def test_only_values_rows_collapse() -> None:
    """Parenthesised groups elsewhere (a select list, a function's arguments) keep their shape."""
    assert sanitize("SELECT f(1), (2)") == "SELECT f(?), (?)"
    assert sanitize("INSERT INTO t VALUES(1, 'a'),(2, 'b')") == "INSERT INTO t VALUES(?, ?)"
