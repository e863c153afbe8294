/*
 * query_parse.c: the segment language's tokenizer, recursive-descent parser and canonical
 * deparser (DESIGN §3).
 *
 * The parser turns text into a QueryNode tree (query.h) and reports every syntax error as
 * ERRCODE_SYNTAX_ERROR with the 1-based character position, an excerpt of the text with a
 * caret, and a hint where one helps.  It never looks at the registry: names are checked by
 * the compiler.  The deparser prints the canonical form: keywords in lower case, single
 * spaces, identifiers bare only when that reads back the same, strings in single quotes,
 * only the parentheses that precedence needs, so output -> input -> output is stable.
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "mb/pg_wchar.h"
#include "regex/regex.h"

#include <limits.h>

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/varlena.h"

#include "query.h"

/*
 * Limits (docs/segment-language.md, "Limits"): a query longer than QUERY_MAX_LENGTH bytes, a
 * list longer than QUERY_MAX_LIST_ITEMS values, more than QUERY_MAX_OFFSETS steps after a
 * contact field, or nesting deeper than QUERY_MAX_DEPTH is refused with a clear message
 * before anything proportional to it is allocated.  Within them, parsing and compiling
 * are linear in the query's size.
 */
#define QUERY_MAX_DEPTH 500
/* amounts of time units: within last N days, today - N days */
#define QUERY_MAX_AMOUNT INT_MAX
/* digits allowed before and after the decimal point of a number */
#define QUERY_MAX_DIGITS 1000

typedef enum TokType
{
	T_EOF,
	T_WORD,						/* bare word, folded to lower case: keyword or identifier */
	T_QIDENT,					/* "quoted identifier" */
	T_STRING,					/* 'string' */
	T_NUMBER,					/* 12, 4.50 (str holds the canonical digits) */
	T_LPAREN, T_RPAREN, T_COMMA, T_DOT, T_PLUS, T_MINUS,
	T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE
} TokType;

typedef struct Token
{
	TokType		type;
	int			pos;			/* 0-based character offset */
	int			bpos;			/* byte offset */
	int			blen;			/* length in bytes as written */
	char	   *str;			/* WORD, QIDENT, STRING, NUMBER */
	bool		integer;		/* NUMBER: no decimal point was written */
} Token;

typedef struct QParser
{
	const char *src;
	int			srclen;			/* bytes */
	Token	   *toks;
	int			ntoks;
	int			cur;
	int			depth;
} QParser;

/* every word with a meaning in the language: identifiers spelled like these are printed quoted */
static const char *const all_keywords[] = {
	"and", "anniversary", "avg", "between", "contact", "contains", "count", "date", "day", "days", "distinct",
	"empty", "ends", "except", "false", "has", "hour", "hours", "in", "intersect", "is",
	"last", "latest", "matches", "max", "min", "minute", "minutes", "month", "months", "next", "no",
	"not", "now", "of", "older", "or", "quarter", "segment", "starts", "sum", "than", "this", "timestamp", "today",
	"true", "union", "value_set", "via", "week", "weeks", "where", "with", "within", "year",
	"years", NULL
};

/*
 * Words that can never be a bare field or relation name, because they would be read as the
 * language's structure; a column spelled like one of them must be written in double quotes.
 */
static const char *const reserved_words[] = {
	"and", "between", "contains", "ends", "except", "false", "has", "in", "intersect", "is",
	"no", "not", "now", "older", "or", "starts", "today", "true", "union", "via", "where",
	"within", NULL
};

static const char *const unit_words[] = {
	"minute", "hour", "day", "week", "month", "year", NULL
};

static const char *const field_operator_words[] = {
	"contains", "starts", "ends", "matches", "is", "in", "between", "within", "older", "not", NULL
};

static QueryNode *parse_query(QParser *p);
static QueryNode *parse_cond(QParser *p);
static QueryNode *parse_neg(QParser *p);

/* ---------------------------------------------------------------- errors */

static bool
word_in(const char *w, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(w, *list) == 0)
			return true;
	return false;
}

/* the closest word of list to w, if it is close enough to be a plausible typo */
static const char *
closest_word(const char *w, const char *const *list)
{
	const char *best = NULL;
	int			best_d = INT_MAX;
	int			wlen = strlen(w);

	if (wlen == 0 || wlen > 64)
		return NULL;
	for (; *list; list++)
	{
		int			max_d = strlen(*list) <= 3 ? 1 : 2;
		int			d = varstr_levenshtein_less_equal(w, wlen, *list, strlen(*list),
													  1, 1, 1, max_d + 1, false);

		if (d <= max_d && d < best_d)
		{
			best = *list;
			best_d = d;
		}
	}
	return best;
}

/* byte offset of 0-based character offset pos */
static int
char_to_byte(const char *s, int slen, int pos)
{
	int			b = 0;

	while (pos > 0 && b < slen)
	{
		int			l = IS_HIGHBIT_SET(s[b]) ? pg_mblen(s + b) : 1;

		b += Min(l, slen - b);
		pos--;
	}
	return b;
}

/*
 * A one-line excerpt of the text around the 0-based character position with a caret line
 * below it, for errdetail.
 */
static char *
excerpt_with_caret(const char *src, int srclen, int pos)
{
	const int	before = 40,
				after = 30;
	int			start = Max(0, pos - before);
	int			sb = char_to_byte(src, srclen, start);
	int			b = sb;
	int			n = 0;
	int			caret;
	StringInfoData buf;

	initStringInfo(&buf);
	if (start > 0)
		appendStringInfoString(&buf, "...");
	caret = (start > 0 ? 3 : 0) + (pos - start);
	while (b < srclen && n < (pos - start) + after)
	{
		int			l = IS_HIGHBIT_SET(src[b]) ? pg_mblen(src + b) : 1;

		l = Min(l, srclen - b);
		if (l == 1 && (unsigned char) src[b] < 0x20)
			appendStringInfoChar(&buf, ' ');
		else
			appendBinaryStringInfo(&buf, src + b, l);
		b += l;
		n++;
	}
	if (b < srclen)
		appendStringInfoString(&buf, "...");
	appendStringInfoChar(&buf, '\n');
	appendStringInfoSpaces(&buf, caret);
	appendStringInfoChar(&buf, '^');
	return buf.data;
}

static void
syntax_error_at(QParser *p, int pos, const char *hint, const char *fmt,...)
pg_attribute_printf(4, 5) pg_attribute_noreturn();

static void
syntax_error_at(QParser *p, int pos, const char *hint, const char *fmt,...)
{
	StringInfoData msg;

	initStringInfo(&msg);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&msg, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&msg, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("syntax error in segment query at character %d: %s", pos + 1, msg.data),
			 p->srclen > 0 ? errdetail("The position is marked with ^ below:\n%s",
									   excerpt_with_caret(p->src, p->srclen, pos)) : 0,
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

/* s (len bytes) cut to about max bytes on a character boundary, with "..." when cut */
static char *
clipped(const char *s, int len, int max)
{
	if (len <= max)
		return pnstrdup(s, len);
	return psprintf("%.*s...", pg_mbcliplen(s, len, max - 3), s);
}

/* a short, printable description of a token for "found ..." */
static char *
describe_token(QParser *p, Token *t)
{
	switch (t->type)
	{
		case T_EOF:
			return "end of input";
		case T_WORD:
			return psprintf("\"%s\"", clipped(t->str, strlen(t->str), 60));
		case T_QIDENT:
			return psprintf("quoted identifier %s", clipped(p->src + t->bpos, t->blen, 60));
		case T_STRING:
			if (t->blen > 40)
			{
				int			b = char_to_byte(p->src + t->bpos, t->blen, 36);

				return psprintf("string %.*s...'", b, p->src + t->bpos);
			}
			return psprintf("string %.*s", t->blen, p->src + t->bpos);
		case T_NUMBER:
			return psprintf("number %s", clipped(t->str, strlen(t->str), 60));
		default:
			return psprintf("\"%.*s\"", t->blen, p->src + t->bpos);
	}
}

/* ---------------------------------------------------------------- tokenizer */

static bool
is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || IS_HIGHBIT_SET(c);
}

static bool
is_ident_cont(unsigned char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static Token *
add_token(QParser *p, int *cap, TokType type, int pos, int bpos, int blen)
{
	Token	   *t;

	if (p->ntoks >= *cap)
	{
		*cap *= 2;
		p->toks = repalloc(p->toks, sizeof(Token) * *cap);
	}
	t = &p->toks[p->ntoks++];
	memset(t, 0, sizeof(Token));
	t->type = type;
	t->pos = pos;
	t->bpos = bpos;
	t->blen = blen;
	return t;
}

/* canonical digits of a number as written: no leading zeros, no trailing fraction zeros */
static char *
canonical_number(QParser *p, const char *s, int len, int pos)
{
	const char *dot = memchr(s, '.', len);
	int			ilen = dot ? dot - s : len;
	const char *frac = dot ? dot + 1 : NULL;
	int			flen = dot ? len - ilen - 1 : 0;
	StringInfoData buf;

	while (ilen > 1 && s[0] == '0')
	{
		s++;
		ilen--;
	}
	while (flen > 0 && frac[flen - 1] == '0')
		flen--;
	if (ilen > QUERY_MAX_DIGITS || flen > QUERY_MAX_DIGITS)
		syntax_error_at(p, pos,
						psprintf("Numbers may have at most %d digits before and after the decimal point.",
								 QUERY_MAX_DIGITS),
						"number is too long");
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, s, ilen);
	if (flen > 0)
	{
		appendStringInfoChar(&buf, '.');
		appendBinaryStringInfo(&buf, frac, flen);
	}
	return buf.data;
}

/*
 * Bidirectional control characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)
 * make a name display differently from what it is ("Trojan Source"): refused in quoted
 * identifiers and in names.  Returns the byte offset of the first one, or -1.
 */
int
outreach_bidi_control_offset(const char *s, int len)
{
	for (int i = 0; i + 1 < len; i++)
	{
		const unsigned char *u = (const unsigned char *) s + i;

		/* U+061C: D8 9C; U+200E/F: E2 80 8E/8F; U+202A-E: E2 80 AA-AE; U+2066-9: E2 81 A6-A9 */
		if (u[0] == 0xD8 && u[1] == 0x9C)
			return i;
		if (i + 2 < len && u[0] == 0xE2 &&
			((u[1] == 0x80 && (u[2] == 0x8E || u[2] == 0x8F || (u[2] >= 0xAA && u[2] <= 0xAE))) ||
			 (u[1] == 0x81 && u[2] >= 0xA6 && u[2] <= 0xA9)))
			return i;
	}
	return -1;
}

static void
tokenize(QParser *p)
{
	const char *s = p->src;
	int			n = p->srclen;
	int			b = 0;
	int			pos = 0;
	int			cap = 64;

	p->toks = palloc(sizeof(Token) * cap);
	p->ntoks = 0;

/* advance over one character starting at byte b */
#define ADVANCE() \
	do { \
		int _l = IS_HIGHBIT_SET(s[b]) ? pg_mblen(s + b) : 1; \
		b += Min(_l, n - b); \
		pos++; \
	} while (0)

	while (b < n)
	{
		unsigned char c = s[b];
		int			sb = b,
					spos = pos;
		Token	   *t;

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
		{
			ADVANCE();
			continue;
		}
		if (c == '-' && b + 1 < n && s[b + 1] == '-')
		{
			while (b < n && s[b] != '\n')
				ADVANCE();
			continue;
		}
		if ((c == 'E' || c == 'e') && b + 1 < n && s[b + 1] == '\'')
		{
			/*
			 * E'...' as quote_literal() writes it (a value set name with a backslash):
			 * \\ and \' are read, '' too; other escapes are refused.
			 */
			StringInfoData buf;
			bool		closed = false;

			initStringInfo(&buf);
			ADVANCE();
			ADVANCE();
			while (b < n)
			{
				if (s[b] == '\\')
				{
					if (b + 1 < n && (s[b + 1] == '\\' || s[b + 1] == '\''))
					{
						appendStringInfoChar(&buf, s[b + 1]);
						ADVANCE();
						ADVANCE();
						continue;
					}
					syntax_error_at(p, spos, "In E'...' strings only \\\\ and \\' are read; write other characters as they are.",
									"unsupported escape in E'...' string");
				}
				if (s[b] == '\'')
				{
					if (b + 1 < n && s[b + 1] == '\'')
					{
						appendStringInfoChar(&buf, '\'');
						ADVANCE();
						ADVANCE();
						continue;
					}
					ADVANCE();
					closed = true;
					break;
				}
				{
					int			cb = b;

					ADVANCE();
					appendBinaryStringInfo(&buf, s + cb, b - cb);
				}
			}
			if (!closed)
				syntax_error_at(p, spos, "Strings are enclosed in single quotes; write '' for a quote inside a string.",
								"unterminated string");
			t = add_token(p, &cap, T_STRING, spos, sb, b - sb);
			t->str = buf.data;
			continue;
		}
		if (is_ident_start(c))
		{
			char	   *w;
			int			i;

			while (b < n && is_ident_cont((unsigned char) s[b]))
				ADVANCE();
			t = add_token(p, &cap, T_WORD, spos, sb, b - sb);
			w = pnstrdup(s + sb, b - sb);
			for (i = 0; w[i]; i++)
				if (w[i] >= 'A' && w[i] <= 'Z')
					w[i] += 'a' - 'A';
			t->str = w;
			continue;
		}
		if (c == '"' || c == '\'')
		{
			StringInfoData buf;
			bool		closed = false;

			initStringInfo(&buf);
			ADVANCE();
			while (b < n)
			{
				if ((unsigned char) s[b] == c)
				{
					if (b + 1 < n && (unsigned char) s[b + 1] == c)
					{
						appendStringInfoChar(&buf, c);
						ADVANCE();
						ADVANCE();
						continue;
					}
					ADVANCE();
					closed = true;
					break;
				}
				else
				{
					int			cb = b;

					ADVANCE();
					appendBinaryStringInfo(&buf, s + cb, b - cb);
				}
			}
			if (!closed)
			{
				if (c == '\'')
					syntax_error_at(p, spos,
									"Strings are enclosed in single quotes; write '' for a quote inside a string.",
									"unterminated string");
				syntax_error_at(p, spos,
								"Quoted identifiers are enclosed in double quotes; write \"\" for a double quote inside one.",
								"unterminated quoted identifier");
			}
			if (c == '"' && buf.len == 0)
				syntax_error_at(p, spos, NULL, "zero-length quoted identifier");
			if (c == '"' && outreach_bidi_control_offset(buf.data, buf.len) >= 0)
				syntax_error_at(p, spos, "Bidirectional control characters (such as U+202E) make a name read differently from what it is.",
								"quoted identifier contains a bidirectional control character");
			t = add_token(p, &cap, c == '"' ? T_QIDENT : T_STRING, spos, sb, b - sb);
			t->str = buf.data;
			continue;
		}
		if (c >= '0' && c <= '9')
		{
			bool		integer = true;

			while (b < n && s[b] >= '0' && s[b] <= '9')
				ADVANCE();
			if (b < n && s[b] == '.')
			{
				integer = false;
				ADVANCE();
				if (!(b < n && s[b] >= '0' && s[b] <= '9'))
					syntax_error_at(p, spos, "Write a digit after the decimal point, for example 1.0.",
									"invalid number \"%.*s\"", b - sb, s + sb);
				while (b < n && s[b] >= '0' && s[b] <= '9')
					ADVANCE();
			}
			if (b < n && (is_ident_cont((unsigned char) s[b]) || s[b] == '.'))
			{
				while (b < n && (is_ident_cont((unsigned char) s[b]) || s[b] == '.'))
					ADVANCE();
				syntax_error_at(p, spos,
								"Numbers are written as digits with an optional decimal point, for example 42 or 4.5; quote text as 'text'.",
								"invalid number \"%s\"", clipped(s + sb, b - sb, 60));
			}
			t = add_token(p, &cap, T_NUMBER, spos, sb, b - sb);
			t->integer = integer;
			t->str = canonical_number(p, s + sb, b - sb, spos);
			continue;
		}
		{
			TokType		type;
			int			len = 1;

			switch (c)
			{
				case '(':
					type = T_LPAREN;
					break;
				case ')':
					type = T_RPAREN;
					break;
				case ',':
					type = T_COMMA;
					break;
				case '.':
					type = T_DOT;
					break;
				case '+':
					type = T_PLUS;
					break;
				case '-':
					type = T_MINUS;
					break;
				case '=':
					type = T_EQ;
					break;
				case '!':
					if (b + 1 < n && s[b + 1] == '=')
					{
						type = T_NE;
						len = 2;
						break;
					}
					syntax_error_at(p, spos, "Write != or <> for \"not equal\".", "unexpected character \"!\"");
					break;
				case '<':
					type = T_LT;
					if (b + 1 < n && s[b + 1] == '=')
					{
						type = T_LE;
						len = 2;
					}
					else if (b + 1 < n && s[b + 1] == '>')
					{
						type = T_NE;
						len = 2;
					}
					break;
				case '>':
					type = T_GT;
					if (b + 1 < n && s[b + 1] == '=')
					{
						type = T_GE;
						len = 2;
					}
					break;
				default:
					{
						int			l = IS_HIGHBIT_SET(c) ? Min(pg_mblen(s + b), n - b) : 1;
						const char *hint = NULL;

						if (c == ';')
							hint = "A segment query is a single query; remove the semicolon.";
						else if (c == '`')
							hint = "Strings are written in single quotes, identifiers in double quotes.";
						if ((unsigned char) c < 0x20 || c == 0x7f)
							syntax_error_at(p, spos, hint, "unexpected control character 0x%02x", c);
						syntax_error_at(p, spos, hint, "unexpected character \"%.*s\"", l, s + b);
					}
			}
			ADVANCE();
			if (len == 2)
				ADVANCE();
			add_token(p, &cap, type, spos, sb, b - sb);
		}
	}
	add_token(p, &cap, T_EOF, pos, b, 0);
#undef ADVANCE
}

/* ---------------------------------------------------------------- parser helpers */

static inline Token *
peek(QParser *p)
{
	return &p->toks[p->cur];
}

static inline Token *
peek_at(QParser *p, int ahead)
{
	int			i = Min(p->cur + ahead, p->ntoks - 1);

	return &p->toks[i];
}

static inline Token *
next(QParser *p)
{
	Token	   *t = &p->toks[p->cur];

	if (t->type != T_EOF)
		p->cur++;
	return t;
}

static inline bool
is_word(Token *t, const char *w)
{
	return t->type == T_WORD && strcmp(t->str, w) == 0;
}

static bool
accept_word(QParser *p, const char *w)
{
	if (is_word(peek(p), w))
	{
		next(p);
		return true;
	}
	return false;
}

/* hint suggesting the closest of candidates when the token is a misspelt word, else dflt */
static const char *
suggest(Token *t, const char *const *candidates, const char *dflt)
{
	if (t->type == T_WORD)
	{
		const char *w = closest_word(t->str, candidates);

		if (w)
			return psprintf("Did you mean \"%s\"?", w);
	}
	return dflt;
}

static Token *
expect_word(QParser *p, const char *w, const char *context)
{
	Token	   *t = peek(p);

	if (!is_word(t, w))
	{
		const char *const cand[] = {w, NULL};

		syntax_error_at(p, t->pos, suggest(t, cand, NULL), "expected \"%s\" %s, found %s",
						w, context, describe_token(p, t));
	}
	return next(p);
}

static Token *
expect_type(QParser *p, TokType type, const char *what, const char *hint)
{
	Token	   *t = peek(p);

	if (t->type != type)
		syntax_error_at(p, t->pos, hint, "expected %s, found %s", what, describe_token(p, t));
	return next(p);
}

static QueryNode *
make_node(QueryNodeType type, int location)
{
	QueryNode  *n = palloc0(sizeof(QueryNode));

	n->type = type;
	n->location = location;
	return n;
}

static void
enter(QParser *p, Token *t)
{
	check_stack_depth();
	if (++p->depth > QUERY_MAX_DEPTH)
		syntax_error_at(p, t->pos,
						"Every parenthesis, not, has, aggregate and union, intersect or except adds a level; write the query with fewer of them, or split it into segments.",
						"the query is nested more than %d levels deep", QUERY_MAX_DEPTH);
}

/* an identifier: a bare word that is not reserved, or a quoted identifier */
static char *
parse_identifier(QParser *p, const char *what, int *location)
{
	Token	   *t = peek(p);

	if (t->type == T_QIDENT || (t->type == T_WORD && !word_in(t->str, reserved_words)))
	{
		*location = t->pos;
		next(p);
		return pstrdup(t->str);
	}
	if (t->type == T_WORD)
		syntax_error_at(p, t->pos,
						psprintf("\"%s\" is a keyword; write it in double quotes to use it as a name.", t->str),
						"expected %s, found keyword \"%s\"", what, t->str);
	syntax_error_at(p, t->pos, NULL, "expected %s, found %s", what, describe_token(p, t));
	return NULL;				/* not reached */
}

static char *
parse_string(QParser *p, const char *what, int *location)
{
	Token	   *t = peek(p);

	if (t->type != T_STRING)
		syntax_error_at(p, t->pos,
						t->type == T_WORD || t->type == T_QIDENT ?
						"Strings are written in single quotes, for example 'text'." : NULL,
						"expected %s, found %s", what, describe_token(p, t));
	*location = t->pos;
	if (outreach_bidi_control_offset(t->str, strlen(t->str)) >= 0)
		syntax_error_at(p, t->pos, "Bidirectional control characters (such as U+202E) make a name read differently from what it is.",
						"%s contains a bidirectional control character", what);
	next(p);
	return pstrdup(t->str);
}

/* a whole, non-negative number of units */
static int64
parse_amount(QParser *p, const char *after)
{
	Token	   *t = peek(p);
	int64		v = 0;
	const char *c;

	if (t->type != T_NUMBER || !t->integer)
		syntax_error_at(p, t->pos,
						"Write a whole number of units, for example 3 days.",
						"expected a whole number after \"%s\", found %s", after, describe_token(p, t));
	for (c = t->str; *c; c++)
	{
		v = v * 10 + (*c - '0');
		if (v > QUERY_MAX_AMOUNT)
			syntax_error_at(p, t->pos,
							psprintf("The largest amount is %d.", QUERY_MAX_AMOUNT),
							"amount %s is too large", clipped(t->str, strlen(t->str), 60));
	}
	next(p);
	return v;
}

static QUnit
parse_unit(QParser *p, int64 amount)
{
	Token	   *t = peek(p);
	int			i;

	if (t->type == T_WORD)
	{
		for (i = 0; unit_words[i]; i++)
		{
			size_t		l = strlen(unit_words[i]);

			if (strncmp(t->str, unit_words[i], l) == 0 &&
				(t->str[l] == '\0' || (t->str[l] == 's' && t->str[l + 1] == '\0')))
			{
				next(p);
				return (QUnit) i;
			}
		}
	}
	{
		static const char *const units_plural[] = {
			"minutes", "hours", "days", "weeks", "months", "years", NULL
		};

		syntax_error_at(p, t->pos,
						suggest(t, amount == 1 ? unit_words : units_plural,
								suggest(t, amount == 1 ? units_plural : unit_words,
										"Units are minutes, hours, days, weeks, months and years.")),
						"expected a unit after \"" INT64_FORMAT "\", found %s", amount, describe_token(p, t));
	}
	return QUNIT_DAY;			/* not reached */
}

/* ---------------------------------------------------------------- literals */

/*
 * Read a date or timestamp literal the way PostgreSQL does, but without a time zone, and
 * return it in ISO form so its meaning does not depend on DateStyle.  Relative words
 * (today, now, ...) are refused: those are written with the today/now keywords.
 */
static char *
canonical_datetime(QParser *p, Token *t, bool is_date)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_tm tt,
			   *tm = &tt;
	fsec_t		fsec = 0;
	int			dterr;
	int			i;
	const char *kind = is_date ? "date" : "timestamp";
	char		buf[MAXDATELEN + 1];
	const char *hint = is_date ? "Write dates as date 'YYYY-MM-DD', for example date '2024-01-31'."
		: "Write timestamps as timestamp 'YYYY-MM-DD HH:MM[:SS]', for example timestamp '2024-01-31 14:30'.";

	const char *literal = describe_token(p, t) + strlen("string ");

	if (strlen(t->str) >= MAXDATELEN)
		syntax_error_at(p, t->pos, hint, "invalid %s %s", kind, literal);
	dterr = ParseDateTime(t->str, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
	if (dterr == 0)
	{
		for (i = 0; i < nf; i++)
		{
			if (ftype[i] == DTK_STRING &&
				(strcmp(field[i], "today") == 0 || strcmp(field[i], "now") == 0 ||
				 strcmp(field[i], "tomorrow") == 0 || strcmp(field[i], "yesterday") == 0 ||
				 strcmp(field[i], "epoch") == 0 || strcmp(field[i], "allballs") == 0))
				syntax_error_at(p, t->pos,
								"Write relative dates with the keywords today or now, for example today - 7 days.",
								"%s '%s' is not a fixed point in time", kind, field[i]);
		}
		/* no time zone argument: a zone in the text is a format error */
		dterr = DecodeDateTime(field, ftype, nf, &dtype, tm, &fsec, NULL);
	}
	if (dterr != 0)
	{
		int			tz;

		/* the same text read with a time zone allowed: then the zone was the problem */
		if (ParseDateTime(t->str, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) == 0 &&
			DecodeDateTime(field, ftype, nf, &dtype, tm, &fsec, &tz) == 0)
			syntax_error_at(p, t->pos,
							"Dates and timestamps are read in the segment's time zone; leave out the time zone.",
							"invalid %s %s: a time zone is not allowed", kind, literal);
		syntax_error_at(p, t->pos, hint, "invalid %s %s", kind, literal);
	}
	if (dtype == DTK_LATE)
		return pstrdup("infinity");
	if (dtype == DTK_EARLY)
		return pstrdup("-infinity");
	if (dtype != DTK_DATE)
		syntax_error_at(p, t->pos, hint, "invalid %s %s", kind, literal);
	if (is_date)
	{
		if (!IS_VALID_JULIAN(tm->tm_year, tm->tm_mon, tm->tm_mday) ||
			!IS_VALID_DATE(date2j(tm->tm_year, tm->tm_mon, tm->tm_mday) - POSTGRES_EPOCH_JDATE))
			syntax_error_at(p, t->pos, NULL, "%s %s is out of range", kind, literal);
		EncodeDateOnly(tm, USE_ISO_DATES, buf);
	}
	else
	{
		Timestamp	ts;

		if (tm2timestamp(tm, fsec, NULL, &ts) != 0 || !IS_VALID_TIMESTAMP(ts))
			syntax_error_at(p, t->pos, NULL, "%s %s is out of range", kind, literal);
		/* print it back from the timestamp so the fields are normalised */
		if (timestamp2tm(ts, NULL, tm, &fsec, NULL, NULL) != 0)
			syntax_error_at(p, t->pos, NULL, "%s %s is out of range", kind, literal);
		EncodeDateTime(tm, fsec, false, 0, NULL, USE_ISO_DATES, buf);
	}
	return pstrdup(buf);
}

static QValue *
parse_value(QParser *p, const char *after)
{
	Token	   *t = peek(p);
	QValue	   *v = palloc0(sizeof(QValue));

	v->location = t->pos;
	if (t->type == T_STRING)
	{
		v->kind = QV_STRING;
		v->text = pstrdup(t->str);
		next(p);
		return v;
	}
	if (t->type == T_NUMBER)
	{
		v->kind = QV_NUMBER;
		v->text = pstrdup(t->str);
		next(p);
		return v;
	}
	if (t->type == T_MINUS && peek_at(p, 1)->type == T_NUMBER)
	{
		Token	   *num;

		next(p);
		num = next(p);
		v->kind = QV_NUMBER;
		v->text = strcmp(num->str, "0") == 0 ? pstrdup("0") : psprintf("-%s", num->str);
		return v;
	}
	if (t->type == T_WORD)
	{
		if (strcmp(t->str, "true") == 0 || strcmp(t->str, "false") == 0)
		{
			v->kind = QV_BOOL;
			v->boolval = (t->str[0] == 't');
			next(p);
			return v;
		}
		if (strcmp(t->str, "date") == 0 || strcmp(t->str, "timestamp") == 0)
		{
			bool		is_date = (t->str[0] == 'd');
			Token	   *s;

			next(p);
			s = peek(p);
			if (s->type != T_STRING)
				syntax_error_at(p, s->pos, is_date ? "Write dates as date '2024-01-31'." :
								"Write timestamps as timestamp '2024-01-31 14:30'.",
								"expected a string after \"%s\", found %s", t->str, describe_token(p, s));
			v->kind = is_date ? QV_DATE : QV_TIMESTAMP;
			v->text = canonical_datetime(p, s, is_date);
			next(p);
			return v;
		}
		if ((strcmp(t->str, "today") == 0 || strcmp(t->str, "now") == 0) ||
			(strcmp(t->str, "contact") == 0 && peek_at(p, 1)->type == T_DOT))
		{
			Token	   *sign;
			int			loc;

			next(p);
			if (t->str[0] == 'c')
			{
				/* contact.field: the contact a relation belongs to */
				v->kind = QV_CONTACT_FIELD;
				next(p);
				v->text = parse_identifier(p, "a field name after \"contact.\"", &loc);
			}
			else
				v->kind = t->str[0] == 't' ? QV_TODAY : QV_NOW;
			sign = peek(p);
			if (sign->type == T_PLUS || sign->type == T_MINUS)
			{
				next(p);
				v->offset_sign = sign->type == T_PLUS ? 1 : -1;
				v->offset_amount = parse_amount(p, sign->type == T_PLUS ? "+" : "-");
				v->offset_unit = parse_unit(p, v->offset_amount);
				/* contact.birthdate + 2 years + 1 day: calendar steps, one after the other */
				while (v->kind == QV_CONTACT_FIELD &&
					   (peek(p)->type == T_PLUS || peek(p)->type == T_MINUS))
				{
					QOffset    *o;

					if (list_length(v->more_offsets) + 1 >= QUERY_MAX_OFFSETS)
						ereport(ERROR,
								(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
								 errmsg("contact.%s at character %d is moved by more than %d steps",
										v->text, v->location + 1, QUERY_MAX_OFFSETS),
								 errhint("Add the amounts up: contact.birthdate + 2 years + 1 day, not one day at a time.")));
					o = palloc0(sizeof(QOffset));
					sign = next(p);
					o->sign = sign->type == T_PLUS ? 1 : -1;
					o->amount = parse_amount(p, sign->type == T_PLUS ? "+" : "-");
					o->unit = parse_unit(p, o->amount);
					v->more_offsets = lappend(v->more_offsets, o);
				}
			}
			return v;
		}
	}
	syntax_error_at(p, t->pos,
					t->type == T_WORD && !word_in(t->str, all_keywords) ?
					psprintf("Strings are written in single quotes, for example '%s'.", clipped(t->str, strlen(t->str), 60)) :
					"A value is a 'string', a number, true, false, date '2024-01-31', timestamp '2024-01-31 14:30', today, now or contact.field.",
					"expected a value after %s, found %s", after, describe_token(p, t));
	return NULL;				/* not reached */
}

static bool
token_is_cmp(Token *t, QCmpOp *op)
{
	switch (t->type)
	{
		case T_EQ:
			*op = QCMP_EQ;
			return true;
		case T_NE:
			*op = QCMP_NE;
			return true;
		case T_LT:
			*op = QCMP_LT;
			return true;
		case T_LE:
			*op = QCMP_LE;
			return true;
		case T_GT:
			*op = QCMP_GT;
			return true;
		case T_GE:
			*op = QCMP_GE;
			return true;
		default:
			return false;
	}
}

static char *
quoted_symbol(QParser *p, Token *t)
{
	return psprintf("\"%.*s\"", t->blen, p->src + t->bpos);
}

/* ---------------------------------------------------------------- grammar */

static QRelation *
parse_relation(QParser *p)
{
	QRelation  *r = palloc0(sizeof(QRelation));
	int			loc;

	r->entity = parse_identifier(p, "an entity name", &r->location);
	if (accept_word(p, "via"))
		r->via = parse_identifier(p, "a link column after \"via\"", &loc);
	return r;
}

/* field cmp value | field [not] contains ... | field is [not] empty | ... */
/*
 * matches 're': the pattern is compiled here, when the text becomes a segment_query, so a
 * wrong one is refused with its position instead of failing every later evaluation; its
 * length is bounded (QUERY_MAX_REGEX characters) and PostgreSQL's regex compiler refuses
 * patterns whose automaton is too large ("too complex"), which bounds the work per row.
 */
static void
check_regex(QParser *p, const char *re, int pos)
{
	int			len = strlen(re);
	int			nchars = pg_mbstrlen_with_len(re, len);
	pg_wchar   *w;
	int			wlen;
	regex_t		rx;
	int			rc;

	if (nchars > QUERY_MAX_REGEX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("regular expression at character %d is longer than %d characters", pos + 1, QUERY_MAX_REGEX),
				 errdetail("A matches pattern holds at most %d characters.", QUERY_MAX_REGEX),
				 errhint("Use a value set, in (...) or contains for long lists of alternatives.")));
	w = palloc((len + 1) * sizeof(pg_wchar));
	wlen = pg_mb2wchar_with_len(re, w, len);
	rc = pg_regcomp(&rx, w, wlen, REG_ADVANCED, DEFAULT_COLLATION_OID);
	if (rc != REG_OKAY)
	{
		char		msg[256];

		pg_regerror(rc, &rx, msg, sizeof(msg));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_REGULAR_EXPRESSION),
				 errmsg("invalid regular expression at character %d: %s", pos + 1, msg),
				 p->srclen > 0 ? errdetail("The position is marked with ^ below:\n%s",
										   excerpt_with_caret(p->src, p->srclen, pos)) : 0,
				 errhint("matches takes a PostgreSQL regular expression, as the ~ operator does: matches '^[0-9]{5}$'.")));
	}
	pg_regfree(&rx);
	pfree(w);
}

static QueryNode *
parse_field_op(QParser *p, char *field, int field_location)
{
	Token	   *t = peek(p);
	QueryNode  *n;
	QCmpOp		op;
	bool		negated = false;

	if (token_is_cmp(t, &op))
	{
		n = make_node(QN_CMP, field_location);
		n->cmp = op;
		next(p);
		n->value = parse_value(p, quoted_symbol(p, t));
		goto done;
	}
	if (is_word(t, "not"))
	{
		Token	   *u;

		next(p);
		negated = true;
		u = peek(p);
		if (!(is_word(u, "contains") || is_word(u, "starts") || is_word(u, "ends") ||
			  is_word(u, "matches") || is_word(u, "in") || is_word(u, "between")))
		{
			static const char *const after_not[] = {"contains", "starts", "ends", "matches", "in", "between", NULL};

			syntax_error_at(p, u->pos,
							is_word(u, "is") ? "Write \"is not empty\" rather than \"not is empty\"." :
							suggest(u, after_not,
									"To negate a whole condition, write not before it: not status = 'active'."),
							"expected contains, starts with, ends with, matches, in or between after \"not\", found %s",
							describe_token(p, u));
		}
		t = u;
	}
	if (is_word(t, "matches"))
	{
		int			loc;

		n = make_node(QN_MATCH, field_location);
		next(p);
		n->match = QMATCH_REGEX;
		n->value = palloc0(sizeof(QValue));
		n->value->kind = QV_STRING;
		n->value->text = parse_string(p, "a regular expression as a string after \"matches\"", &loc);
		n->value->location = loc;
		check_regex(p, n->value->text, loc);
		goto done;
	}
	if (is_word(t, "contains") || is_word(t, "starts") || is_word(t, "ends"))
	{
		int			loc;

		n = make_node(QN_MATCH, field_location);
		next(p);
		if (t->str[0] == 'c')
			n->match = QMATCH_CONTAINS;
		else
		{
			n->match = t->str[0] == 's' ? QMATCH_STARTS_WITH : QMATCH_ENDS_WITH;
			expect_word(p, "with", psprintf("after \"%s\"", t->str));
		}
		n->value = palloc0(sizeof(QValue));
		n->value->kind = QV_STRING;
		n->value->text = parse_string(p, psprintf("a string after \"%s\"",
												  n->match == QMATCH_CONTAINS ? "contains" :
												  n->match == QMATCH_STARTS_WITH ? "starts with" : "ends with"),
									  &loc);
		n->value->location = loc;
		goto done;
	}
	if (is_word(t, "in"))
	{
		next(p);
		if (peek(p)->type == T_LPAREN)
		{
			n = make_node(QN_IN_LIST, field_location);
			next(p);
			n->values = lappend(n->values, parse_value(p, "\"(\""));
			while (peek(p)->type == T_COMMA)
			{
				if (list_length(n->values) >= QUERY_MAX_LIST_ITEMS)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("the list of values at character %d has more than %d items",
									n->location + 1, QUERY_MAX_LIST_ITEMS),
							 errdetail("A segment query's in (...) list holds at most %d values.", QUERY_MAX_LIST_ITEMS),
							 errhint("Put the codes in a value set (outreach.value_set) and write in value_set 'name'.")));
				next(p);
				n->values = lappend(n->values, parse_value(p, "\",\""));
			}
			expect_type(p, T_RPAREN, "\",\" or \")\" in the list of values", NULL);
			goto done;
		}
		if (is_word(peek(p), "this") || is_word(peek(p), "last") || is_word(peek(p), "next"))
		{
			Token	   *d = next(p);
			Token	   *u = peek(p);
			static const char *const periods[] = {"week", "month", "quarter", "year", NULL};

			n = make_node(QN_WITHIN, field_location);
			n->direction = d->str[0] == 't' ? QDIR_THIS : d->str[0] == 'l' ? QDIR_LAST : QDIR_NEXT;
			n->period = is_word(u, "week") ? QPERIOD_WEEK : is_word(u, "month") ? QPERIOD_MONTH :
				is_word(u, "quarter") ? QPERIOD_QUARTER : is_word(u, "year") ? QPERIOD_YEAR : QPERIOD_NONE;
			if (n->period == QPERIOD_NONE)
				syntax_error_at(p, u->pos,
								u->type == T_NUMBER ? "A number of units is written with within: within last 3 months." :
								suggest(u, periods, "Write in this month, in last quarter or in next year."),
								"expected week, month, quarter or year after \"in %s\", found %s",
								d->str, describe_token(p, u));
			next(p);
			goto done;
		}
		if (accept_word(p, "value_set"))
		{
			n = make_node(QN_IN_VALUE_SET, field_location);
			n->name = parse_string(p, "the name of a value set as a string", &n->name_location);
			goto done;
		}
		{
			static const char *const vs[] = {"value_set", NULL};

			syntax_error_at(p, peek(p)->pos,
							suggest(peek(p), vs, "Write in ('a', 'b') for a list of values or in value_set 'name' for a named code list."),
							"expected \"(\", \"value_set\" or this, last, next after \"in\", found %s", describe_token(p, peek(p)));
		}
	}
	if (is_word(t, "between"))
	{
		n = make_node(QN_BETWEEN, field_location);
		next(p);
		n->value = parse_value(p, "\"between\"");
		expect_word(p, "and", "between the two values of \"between\"");
		n->value2 = parse_value(p, "\"and\"");
		goto done;
	}
	if (is_word(t, "is"))
	{
		n = make_node(QN_EMPTY, field_location);
		next(p);
		if (accept_word(p, "not"))
			n->negated = true;
		if (is_word(peek(p), "null"))
			syntax_error_at(p, peek(p)->pos,
							"Write is empty or is not empty: empty means NULL, or '' for text.",
							"expected \"empty\" after \"%s\", found \"null\"", n->negated ? "is not" : "is");
		expect_word(p, "empty", n->negated ? "after \"is not\"" : "after \"is\"");
		return n;
	}
	if (is_word(t, "within"))
	{
		Token	   *d;

		n = make_node(QN_WITHIN, field_location);
		next(p);
		d = peek(p);
		if (is_word(d, "last"))
			n->direction = QDIR_LAST;
		else if (is_word(d, "next"))
			n->direction = QDIR_NEXT;
		else
		{
			static const char *const dirs[] = {"last", "next", NULL};

			syntax_error_at(p, d->pos, suggest(d, dirs, "Write within last 30 days or within next 2 weeks."),
							"expected \"last\" or \"next\" after \"within\", found %s", describe_token(p, d));
		}
		next(p);
		n->amount = parse_amount(p, d->str);
		n->unit = parse_unit(p, n->amount);
		return n;
	}
	if (is_word(t, "older"))
	{
		n = make_node(QN_OLDER_THAN, field_location);
		next(p);
		expect_word(p, "than", "after \"older\"");
		n->amount = parse_amount(p, "than");
		n->unit = parse_unit(p, n->amount);
		return n;
	}
	syntax_error_at(p, t->pos,
					suggest(t, field_operator_words,
							"After a field comes a comparison (=, !=, <, <=, >, >=) or contains, starts with, ends with, matches, is empty, in, between, within or older than."),
					"expected a comparison or an operator after field \"%s\", found %s",
					clipped(field, strlen(field), 60), describe_token(p, t));
	return NULL;				/* not reached */

done:
	n->negated = negated;
	return n;
}

static QueryNode *
parse_field_pred(QParser *p, char *field, int field_location)
{
	QueryNode  *n = parse_field_op(p, field, field_location);

	n->field = field;
	n->field_location = field_location;
	return n;
}

static QueryNode *
parse_pred(QParser *p)
{
	Token	   *t = peek(p);
	QueryNode  *n;

	if (is_word(t, "has"))
	{
		n = make_node(QN_HAS, t->pos);
		next(p);
		if (accept_word(p, "no"))
			n->negated = true;
		n->relation = parse_relation(p);
		if (accept_word(p, "where"))
			n->filter = parse_neg(p);
		return n;
	}
	if (is_word(t, "in") && is_word(peek_at(p, 1), "segment"))
	{
		n = make_node(QN_IN_SEGMENT, t->pos);
		next(p);
		next(p);
		n->name = parse_string(p, "a segment name as a string after \"in segment\"", &n->name_location);
		return n;
	}
	if (t->type == T_WORD && peek_at(p, 1)->type == T_LPAREN &&
		(strcmp(t->str, "count") == 0 || strcmp(t->str, "min") == 0 || strcmp(t->str, "max") == 0 ||
		 strcmp(t->str, "sum") == 0 || strcmp(t->str, "avg") == 0 || strcmp(t->str, "latest") == 0))
	{
		Token	   *op;
		bool		latest = strcmp(t->str, "latest") == 0;

		n = make_node(latest ? QN_LATEST : QN_AGG, t->pos);
		if (!latest)
			n->agg = t->str[0] == 'c' ? QAGG_COUNT : strcmp(t->str, "min") == 0 ? QAGG_MIN :
				strcmp(t->str, "max") == 0 ? QAGG_MAX : strcmp(t->str, "sum") == 0 ? QAGG_SUM : QAGG_AVG;
		next(p);
		next(p);
		/* count(distinct R.f): "distinct" followed by a name (an entity called distinct is not) */
		if (n->agg == QAGG_COUNT && !latest && is_word(peek(p), "distinct") &&
			(peek_at(p, 1)->type == T_QIDENT ||
			 (peek_at(p, 1)->type == T_WORD && !is_word(peek_at(p, 1), "where") && !is_word(peek_at(p, 1), "via"))))
		{
			next(p);
			n->distinct = true;
			/* count(distinct day of R.f) */
			if (is_word(peek(p), "day") && is_word(peek_at(p, 1), "of"))
			{
				next(p);
				next(p);
				n->distinct_day = true;
			}
		}
		n->relation = parse_relation(p);
		if (peek(p)->type == T_DOT)
		{
			next(p);
			n->field = parse_identifier(p, "a field name after \".\"", &n->field_location);
		}
		else if (n->distinct)
			syntax_error_at(p, peek(p)->pos, "Name the field whose distinct values are counted, for example count(distinct immunization.administered_at).",
							"expected \".\" and a field after the entity in \"count(distinct\", found %s",
							describe_token(p, peek(p)));
		else if (latest)
			syntax_error_at(p, peek(p)->pos, "Name the field whose newest value is compared, for example latest(observation.value_numeric).",
							"expected \".\" and a field after the entity in \"latest(\", found %s",
							describe_token(p, peek(p)));
		if (accept_word(p, "where"))
			n->filter = parse_cond(p);
		expect_type(p, T_RPAREN, psprintf("\")\" to close \"%s(\"", t->str), NULL);
		op = peek(p);
		if (is_word(op, "is") || is_word(op, "between") || is_word(op, "in") ||
			(is_word(op, "not") && (is_word(peek_at(p, 1), "between") || is_word(peek_at(p, 1), "in"))))
		{
			/* the result is tested as a field is: is [not] empty, [not] between, [not] in (...) */
			QueryNode  *r = parse_field_op(p, pstrdup(t->str), t->pos);

			if (r->type == QN_EMPTY)
			{
				n->result_test = QRES_EMPTY;
				n->empty_test = true;
			}
			else if (r->type == QN_BETWEEN)
			{
				n->result_test = QRES_BETWEEN;
				n->value = r->value;
				n->value2 = r->value2;
			}
			else if (r->type == QN_IN_LIST)
			{
				n->result_test = QRES_IN_LIST;
				n->values = r->values;
			}
			else
				syntax_error_at(p, op->pos, "Write in (1, 2) for a list of values; value sets and periods apply to fields.",
								"expected \"(\" after \"in\" following \"%s(...)\"", t->str);
			n->negated = r->negated;
			return n;
		}
		if (!token_is_cmp(op, &n->cmp))
			syntax_error_at(p, op->pos,
							"Compare the result with =, !=, <, <=, >, >=, between or in (...), or test it with is empty.",
							"expected a comparison (=, !=, <, <=, >, >=), between, in or \"is\" after \"%s(...)\", found %s",
							t->str, describe_token(p, op));
		next(p);
		n->value = parse_value(p, quoted_symbol(p, op));
		return n;
	}
	if (is_word(t, "anniversary") && is_word(peek_at(p, 1), "of"))
	{
		/* anniversary of <date field> within last|next N unit */
		char	   *field;
		int			floc;

		next(p);
		next(p);
		field = parse_identifier(p, "a date field after \"anniversary of\"", &floc);
		if (!is_word(peek(p), "within"))
			syntax_error_at(p, peek(p)->pos, "Write anniversary of start_date within next 30 days.",
							"expected \"within\" after \"anniversary of %s\", found %s",
							clipped(field, strlen(field), 60), describe_token(p, peek(p)));
		n = parse_field_pred(p, field, floc);
		n->location = t->pos;
		n->anniversary = true;
		return n;
	}
	if (is_word(t, "age") && is_word(peek_at(p, 1), "at"))
	{
		/* age at <date>: contact's age in whole years on that date */
		QValue	   *at;

		next(p);
		next(p);
		at = parse_value(p, "\"age at\"");
		n = parse_field_pred(p, pstrdup("age"), t->pos);
		n->age_at = at;
		return n;
	}
	if (t->type == T_QIDENT || (t->type == T_WORD && !word_in(t->str, reserved_words)))
	{
		next(p);
		return parse_field_pred(p, pstrdup(t->str), t->pos);
	}
	if (t->type == T_EOF)
		syntax_error_at(p, t->pos, "A condition compares a field with a value, for example status = 'active'.",
						"expected a condition, found end of input");
	if (t->type == T_WORD)
		syntax_error_at(p, t->pos,
						psprintf("\"%s\" is a keyword; write it in double quotes to use it as a field name.", t->str),
						"expected a condition, found keyword \"%s\"", t->str);
	syntax_error_at(p, t->pos, "A condition starts with a field name, not, has, in segment, an aggregate such as count(...) or a parenthesis.",
					"expected a condition, found %s", describe_token(p, t));
	return NULL;				/* not reached */
}

static QueryNode *
parse_neg(QParser *p)
{
	Token	   *t = peek(p);
	QueryNode  *n;

	enter(p, t);
	if (is_word(t, "not"))
	{
		next(p);
		n = make_node(QN_NOT, t->pos);
		n->arg = parse_neg(p);
	}
	else if (t->type == T_LPAREN)
	{
		next(p);
		n = parse_cond(p);
		expect_type(p, T_RPAREN, psprintf("\")\" to close the \"(\" at character %d", t->pos + 1),
					NULL);
	}
	else
		n = parse_pred(p);
	p->depth--;
	return n;
}

/* and/or lists: a parenthesised list of the same operator is spliced in, it means the same */
static QueryNode *
parse_list(QParser *p, QueryNodeType type)
{
	const char *word = type == QN_OR ? "or" : "and";
	Token	   *first = peek(p);
	QueryNode  *n = NULL;
	QueryNode  *arg;

	arg = type == QN_OR ? parse_list(p, QN_AND) : parse_neg(p);
	if (!is_word(peek(p), word))
		return arg;
	n = make_node(type, first->pos);
	for (;;)
	{
		if (arg->type == type)
			n->args = list_concat(n->args, arg->args);
		else
			n->args = lappend(n->args, arg);
		if (!accept_word(p, word))
			break;
		arg = type == QN_OR ? parse_list(p, QN_AND) : parse_neg(p);
	}
	return n;
}

static QueryNode *
parse_cond(QParser *p)
{
	return parse_list(p, QN_OR);
}

static QueryNode *
parse_term(QParser *p)
{
	Token	   *t = peek(p);
	QueryNode  *n;

	enter(p, t);
	if (is_word(t, "contact"))
	{
		next(p);
		n = make_node(QN_CONTACT, t->pos);
		if (accept_word(p, "where"))
			n->filter = parse_cond(p);
	}
	else if (is_word(t, "segment"))
	{
		next(p);
		n = make_node(QN_SEGMENT, t->pos);
		n->name = parse_string(p, "a segment name as a string after \"segment\"", &n->name_location);
	}
	else if (t->type == T_LPAREN)
	{
		next(p);
		n = parse_query(p);
		expect_type(p, T_RPAREN, psprintf("\")\" to close the \"(\" at character %d", t->pos + 1), NULL);
	}
	else
	{
		static const char *const starts[] = {"contact", "segment", NULL};

		syntax_error_at(p, t->pos,
						suggest(t, starts, "A query is contact [where ...], segment 'name' or a query in parentheses."),
						"expected a query (contact, segment or \"(\"), found %s", describe_token(p, t));
	}
	p->depth--;
	return n;
}

/*
 * Set operations chain to the left, so each one makes the tree a level deeper: they count
 * toward the depth limit like parentheses do, which keeps every later recursive walk of the
 * tree (deparser, compiler) bounded too.
 */
static QueryNode *
parse_query(QParser *p)
{
	QueryNode  *n = parse_term(p);
	int			levels = 0;

	for (;;)
	{
		Token	   *t = peek(p);
		QueryNode  *s;

		if (!(is_word(t, "union") || is_word(t, "intersect") || is_word(t, "except")))
		{
			p->depth -= levels;
			return n;
		}
		enter(p, t);
		levels++;
		next(p);
		s = make_node(QN_SETOP, n->location);
		s->setop = t->str[0] == 'u' ? QSET_UNION : t->str[0] == 'i' ? QSET_INTERSECT : QSET_EXCEPT;
		s->left = n;
		s->right = parse_term(p);
		n = s;
	}
}

QueryNode *
segment_query_parse(const char *text)
{
	QParser		p;
	QueryNode  *n;
	Token	   *t;

	memset(&p, 0, sizeof(p));
	p.src = text;
	p.srclen = strlen(text);
	if (p.srclen > QUERY_MAX_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("segment query is too long (%d bytes)", p.srclen),
				 errdetail("A segment query has at most %d bytes.", QUERY_MAX_LENGTH),
				 errhint("Put long code lists in a value set (outreach.value_set) and write in value_set 'name'.")));
	tokenize(&p);
	if (p.toks[0].type == T_EOF)
		syntax_error_at(&p, 0, "A query is contact [where ...], segment 'name' or a query in parentheses, for example contact where status = 'active'.",
						"the query is empty");
	n = parse_query(&p);
	t = peek(&p);
	if (t->type != T_EOF)
	{
		const char *hint;
		Token	   *prev = &p.toks[p.cur - 1];

		if (t->type == T_RPAREN)
			hint = "This \")\" has no matching \"(\".";
		else if (is_word(prev, "contact") && (t->type == T_WORD || t->type == T_QIDENT))
			hint = "Write contact where ... to filter contacts.";
		else if (t->type == T_WORD || t->type == T_QIDENT)
			hint = "Join conditions with and or or; combine queries with union, intersect or except.";
		else
			hint = NULL;
		{
			static const char *const joiners[] = {"and", "or", "union", "intersect", "except", "where", NULL};

			syntax_error_at(&p, t->pos, suggest(t, joiners, hint),
							"expected end of input, found %s", describe_token(&p, t));
		}
	}
	return n;
}

/* ---------------------------------------------------------------- deparser */

enum
{
	LEVEL_OR, LEVEL_AND, LEVEL_NEG
};

static void
append_identifier(StringInfo buf, const char *id)
{
	const char *c;
	bool		plain = (id[0] >= 'a' && id[0] <= 'z') || id[0] == '_';

	for (c = id; *c && plain; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '$'))
			plain = false;
	if (plain && !word_in(id, all_keywords))
	{
		appendStringInfoString(buf, id);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (c = id; *c; c++)
	{
		if (*c == '"')
			appendStringInfoChar(buf, '"');
		appendStringInfoChar(buf, *c);
	}
	appendStringInfoChar(buf, '"');
}

static void
append_string(StringInfo buf, const char *s)
{
	appendStringInfoChar(buf, '\'');
	for (; *s; s++)
	{
		if (*s == '\'')
			appendStringInfoChar(buf, '\'');
		appendStringInfoChar(buf, *s);
	}
	appendStringInfoChar(buf, '\'');
}

static void
append_amount(StringInfo buf, int64 amount, QUnit unit)
{
	static const char *const names[] = {"minute", "hour", "day", "week", "month", "year"};

	if ((int) unit < 0 || (int) unit > QUNIT_YEAR)
		elog(ERROR, "unknown segment query unit %d", (int) unit);
	appendStringInfo(buf, INT64_FORMAT " %s%s", amount, names[unit], amount == 1 ? "" : "s");
}

static void
append_value(StringInfo buf, const QValue *v)
{
	switch (v->kind)
	{
		case QV_STRING:
			append_string(buf, v->text);
			break;
		case QV_NUMBER:
			appendStringInfoString(buf, v->text);
			break;
		case QV_BOOL:
			appendStringInfoString(buf, v->boolval ? "true" : "false");
			break;
		case QV_DATE:
			appendStringInfoString(buf, "date ");
			append_string(buf, v->text);
			break;
		case QV_TIMESTAMP:
			appendStringInfoString(buf, "timestamp ");
			append_string(buf, v->text);
			break;
		case QV_TODAY:
		case QV_NOW:
		case QV_CONTACT_FIELD:
			if (v->kind == QV_CONTACT_FIELD)
			{
				appendStringInfoString(buf, "contact.");
				append_identifier(buf, v->text);
			}
			else
				appendStringInfoString(buf, v->kind == QV_TODAY ? "today" : "now");
			if (v->offset_sign != 0)
			{
				ListCell   *lc;

				appendStringInfoString(buf, v->offset_sign > 0 ? " + " : " - ");
				append_amount(buf, v->offset_amount, v->offset_unit);
				foreach(lc, v->more_offsets)
				{
					const QOffset *o = lfirst(lc);

					appendStringInfoString(buf, o->sign > 0 ? " + " : " - ");
					append_amount(buf, o->amount, o->unit);
				}
			}
			break;
		default:
			elog(ERROR, "unknown segment query value kind %d", (int) v->kind);
	}
}

static const char *
cmp_text(QCmpOp op)
{
	switch (op)
	{
		case QCMP_EQ:
			return "=";
		case QCMP_NE:
			return "!=";
		case QCMP_LT:
			return "<";
		case QCMP_LE:
			return "<=";
		case QCMP_GT:
			return ">";
		case QCMP_GE:
			return ">=";
	}
	elog(ERROR, "unknown segment query comparison %d", (int) op);
	return NULL;
}

static void
append_relation(StringInfo buf, const QRelation *r)
{
	append_identifier(buf, r->entity);
	if (r->via)
	{
		appendStringInfoString(buf, " via ");
		append_identifier(buf, r->via);
	}
}

static void deparse_cond(StringInfo buf, const QueryNode *n, int level);

/* the field of a predicate, with the date of "age at <date>" */
static void
append_field(StringInfo buf, const QueryNode *n)
{
	append_identifier(buf, n->field);
	if (n->age_at)
	{
		appendStringInfoString(buf, " at ");
		append_value(buf, n->age_at);
	}
}

static void
deparse_list(StringInfo buf, const QueryNode *n, int level, int own_level, const char *sep)
{
	ListCell   *lc;
	bool		first = true;

	if (level > own_level)
		appendStringInfoChar(buf, '(');
	foreach(lc, n->args)
	{
		if (!first)
			appendStringInfoString(buf, sep);
		deparse_cond(buf, (const QueryNode *) lfirst(lc), own_level);
		first = false;
	}
	if (level > own_level)
		appendStringInfoChar(buf, ')');
}

static void
deparse_cond(StringInfo buf, const QueryNode *n, int level)
{
	ListCell   *lc;

	check_stack_depth();
	switch (n->type)
	{
		case QN_OR:
			deparse_list(buf, n, level, LEVEL_OR, " or ");
			break;
		case QN_AND:
			deparse_list(buf, n, level, LEVEL_AND, " and ");
			break;
		case QN_NOT:
			appendStringInfoString(buf, "not ");
			deparse_cond(buf, n->arg, LEVEL_NEG);
			break;
		case QN_CMP:
			append_field(buf, n);
			appendStringInfo(buf, " %s ", cmp_text(n->cmp));
			append_value(buf, n->value);
			break;
		case QN_MATCH:
			append_field(buf, n);
			appendStringInfoString(buf, n->negated ? " not " : " ");
			appendStringInfoString(buf, n->match == QMATCH_CONTAINS ? "contains " :
								   n->match == QMATCH_STARTS_WITH ? "starts with " :
								   n->match == QMATCH_REGEX ? "matches " : "ends with ");
			append_value(buf, n->value);
			break;
		case QN_EMPTY:
			append_field(buf, n);
			appendStringInfoString(buf, n->negated ? " is not empty" : " is empty");
			break;
		case QN_IN_LIST:
			append_field(buf, n);
			appendStringInfoString(buf, n->negated ? " not in (" : " in (");
			foreach(lc, n->values)
			{
				if (lc != list_head(n->values))
					appendStringInfoString(buf, ", ");
				append_value(buf, (const QValue *) lfirst(lc));
			}
			appendStringInfoChar(buf, ')');
			break;
		case QN_IN_VALUE_SET:
			append_field(buf, n);
			appendStringInfoString(buf, n->negated ? " not in value_set " : " in value_set ");
			append_string(buf, n->name);
			break;
		case QN_BETWEEN:
			append_field(buf, n);
			appendStringInfoString(buf, n->negated ? " not between " : " between ");
			append_value(buf, n->value);
			appendStringInfoString(buf, " and ");
			append_value(buf, n->value2);
			break;
		case QN_WITHIN:
			if (n->period != QPERIOD_NONE)
			{
				append_field(buf, n);
				appendStringInfoString(buf, n->negated ? " not in " : " in ");
				appendStringInfoString(buf, n->direction == QDIR_THIS ? "this " : n->direction == QDIR_LAST ? "last " : "next ");
				appendStringInfoString(buf, n->period == QPERIOD_WEEK ? "week" : n->period == QPERIOD_MONTH ? "month" :
									   n->period == QPERIOD_QUARTER ? "quarter" : "year");
				break;
			}
			if (n->anniversary)
				appendStringInfoString(buf, "anniversary of ");
			append_field(buf, n);
			appendStringInfoString(buf, n->direction == QDIR_LAST ? " within last " : " within next ");
			append_amount(buf, n->amount, n->unit);
			break;
		case QN_OLDER_THAN:
			append_field(buf, n);
			appendStringInfoString(buf, " older than ");
			append_amount(buf, n->amount, n->unit);
			break;
		case QN_HAS:
			appendStringInfoString(buf, n->negated ? "has no " : "has ");
			append_relation(buf, n->relation);
			if (n->filter)
			{
				appendStringInfoString(buf, " where ");
				deparse_cond(buf, n->filter, LEVEL_NEG);
			}
			break;
		case QN_AGG:
		case QN_LATEST:
			if (n->type == QN_LATEST)
				appendStringInfoString(buf, "latest(");
			else
				appendStringInfoString(buf, n->agg == QAGG_COUNT ? (n->distinct_day ? "count(distinct day of " :
																  n->distinct ? "count(distinct " : "count(") :
									   n->agg == QAGG_MIN ? "min(" :
									   n->agg == QAGG_MAX ? "max(" : n->agg == QAGG_SUM ? "sum(" : "avg(");
			append_relation(buf, n->relation);
			if (n->field)
			{
				appendStringInfoChar(buf, '.');
				append_identifier(buf, n->field);
			}
			if (n->filter)
			{
				appendStringInfoString(buf, " where ");
				deparse_cond(buf, n->filter, LEVEL_OR);
			}
			if (n->empty_test)
			{
				appendStringInfoString(buf, n->negated ? ") is not empty" : ") is empty");
				break;
			}
			if (n->result_test == QRES_BETWEEN)
			{
				appendStringInfoString(buf, n->negated ? ") not between " : ") between ");
				append_value(buf, n->value);
				appendStringInfoString(buf, " and ");
				append_value(buf, n->value2);
				break;
			}
			if (n->result_test == QRES_IN_LIST)
			{
				appendStringInfoString(buf, n->negated ? ") not in (" : ") in (");
				foreach(lc, n->values)
				{
					if (lc != list_head(n->values))
						appendStringInfoString(buf, ", ");
					append_value(buf, (const QValue *) lfirst(lc));
				}
				appendStringInfoChar(buf, ')');
				break;
			}
			appendStringInfo(buf, ") %s ", cmp_text(n->cmp));
			append_value(buf, n->value);
			break;
		case QN_IN_SEGMENT:
			appendStringInfoString(buf, "in segment ");
			append_string(buf, n->name);
			break;
		default:
			elog(ERROR, "unexpected segment query node %d in a condition", (int) n->type);
	}
}

static void
deparse_query(StringInfo buf, const QueryNode *n, bool right_operand)
{
	check_stack_depth();
	switch (n->type)
	{
		case QN_CONTACT:
			appendStringInfoString(buf, "contact");
			if (n->filter)
			{
				appendStringInfoString(buf, " where ");
				deparse_cond(buf, n->filter, LEVEL_OR);
			}
			break;
		case QN_SEGMENT:
			appendStringInfoString(buf, "segment ");
			append_string(buf, n->name);
			break;
		case QN_SETOP:
			if (right_operand)
				appendStringInfoChar(buf, '(');
			deparse_query(buf, n->left, false);
			appendStringInfoString(buf, n->setop == QSET_UNION ? " union " :
								   n->setop == QSET_INTERSECT ? " intersect " : " except ");
			deparse_query(buf, n->right, true);
			if (right_operand)
				appendStringInfoChar(buf, ')');
			break;
		default:
			elog(ERROR, "unexpected segment query node %d at query level", (int) n->type);
	}
}

char *
segment_query_deparse(const QueryNode *node)
{
	StringInfoData buf;

	initStringInfo(&buf);
	deparse_query(&buf, node, false);
	return buf.data;
}

/* ---------------------------------------------------------------- tree dump */

/*
 * A fully parenthesised rendering of the tree, every field of every node, for tests and
 * debugging: without locations, two texts mean the same query exactly when their dumps are
 * equal (the fuzzer checks that the canonical form dumps like the input it came from).
 */
static void dump_node(StringInfo buf, const QueryNode *n, bool loc);

static void
dump_value(StringInfo buf, const QValue *v, bool loc)
{
	static const char *const kinds[] = {"string", "number", "bool", "date", "timestamp", "today", "now", "contact_field"};

	appendStringInfo(buf, "(%s ", kinds[v->kind]);
	append_value(buf, v);
	if (loc)
		appendStringInfo(buf, " @%d", v->location);
	appendStringInfoChar(buf, ')');
}

static void
dump_relation(StringInfo buf, const QRelation *r, bool loc)
{
	appendStringInfoString(buf, " (relation ");
	append_identifier(buf, r->entity);
	if (r->via)
	{
		appendStringInfoString(buf, " via ");
		append_identifier(buf, r->via);
	}
	if (loc)
		appendStringInfo(buf, " @%d", r->location);
	appendStringInfoChar(buf, ')');
}

static void
dump_node(StringInfo buf, const QueryNode *n, bool loc)
{
	static const char *const names[] = {
		"contact", "segment", "setop", "or", "and", "not", "cmp", "match", "empty", "in_list",
		"in_value_set", "between", "within", "older_than", "has", "agg", "latest", "in_segment"
	};
	ListCell   *lc;

	check_stack_depth();
	appendStringInfo(buf, "(%s", names[n->type]);
	if (loc)
		appendStringInfo(buf, "@%d", n->location);
	if (n->negated)
		appendStringInfoString(buf, " negated");
	if (n->type == QN_SETOP)
		appendStringInfo(buf, " %s", n->setop == QSET_UNION ? "union" : n->setop == QSET_INTERSECT ? "intersect" : "except");
	if (n->field)
	{
		appendStringInfoString(buf, " field=");
		append_identifier(buf, n->field);
		if (loc)
			appendStringInfo(buf, "@%d", n->field_location);
	}
	if (n->age_at)
	{
		appendStringInfoString(buf, " at=");
		dump_value(buf, n->age_at, loc);
	}
	if (n->empty_test)
		appendStringInfoString(buf, " empty");
	else if (n->result_test == QRES_BETWEEN)
		appendStringInfoString(buf, " between");
	else if (n->result_test == QRES_IN_LIST)
		appendStringInfoString(buf, " in_list");
	else if (n->type == QN_CMP || n->type == QN_AGG || n->type == QN_LATEST)
		appendStringInfo(buf, " %s", cmp_text(n->cmp));
	if (n->type == QN_MATCH)
		appendStringInfo(buf, " %d", (int) n->match);
	if (n->type == QN_AGG)
		appendStringInfo(buf, " agg=%d", (int) n->agg);
	if (n->distinct)
		appendStringInfoString(buf, n->distinct_day ? " distinct_day" : " distinct");
	if (n->anniversary)
		appendStringInfoString(buf, " anniversary");
	if (n->period != QPERIOD_NONE)
		appendStringInfo(buf, " period=%d dir=%d", (int) n->period, (int) n->direction);
	else if (n->type == QN_WITHIN || n->type == QN_OLDER_THAN)
	{
		appendStringInfo(buf, " dir=%d ", (int) n->direction);
		append_amount(buf, n->amount, n->unit);
	}
	if (n->name)
	{
		appendStringInfoString(buf, " name=");
		append_string(buf, n->name);
		if (loc)
			appendStringInfo(buf, "@%d", n->name_location);
	}
	if (n->relation)
		dump_relation(buf, n->relation, loc);
	if (n->value)
	{
		appendStringInfoChar(buf, ' ');
		dump_value(buf, n->value, loc);
	}
	if (n->value2)
	{
		appendStringInfoChar(buf, ' ');
		dump_value(buf, n->value2, loc);
	}
	foreach(lc, n->values)
	{
		appendStringInfoChar(buf, ' ');
		dump_value(buf, (const QValue *) lfirst(lc), loc);
	}
	if (n->left)
	{
		appendStringInfoChar(buf, ' ');
		dump_node(buf, n->left, loc);
	}
	if (n->right)
	{
		appendStringInfoChar(buf, ' ');
		dump_node(buf, n->right, loc);
	}
	foreach(lc, n->args)
	{
		appendStringInfoChar(buf, ' ');
		dump_node(buf, (const QueryNode *) lfirst(lc), loc);
	}
	if (n->arg)
	{
		appendStringInfoChar(buf, ' ');
		dump_node(buf, n->arg, loc);
	}
	if (n->filter)
	{
		appendStringInfoString(buf, " filter=");
		dump_node(buf, n->filter, loc);
	}
	appendStringInfoChar(buf, ')');
}

char *
segment_query_tree_string(const QueryNode *node, bool with_locations)
{
	StringInfoData buf;

	initStringInfo(&buf);
	dump_node(&buf, node, with_locations);
	return buf.data;
}
