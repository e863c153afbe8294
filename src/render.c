/*
 * render.c: the message template renderer.
 *
 * Owns the template token syntax `{{ path }}` and `{{ path | default: 'text' }}`:
 *   - outreach._template_tokens(body, allowed, part): parse a template at save time, refuse
 *     syntax errors and unknown tokens (with the character position and the closest allowed
 *     token as a hint), return the distinct token paths used;
 *   - outreach._render(body, html, keys, vals): substitute values (HTML-escaped for HTML
 *     bodies), falling back to the token's default when the value is NULL or empty;
 *   - outreach.sms_segments(text): how many SMS parts a text needs (GSM-7 or UCS-2).
 * Everything outside the tokens is copied verbatim: it is the author's own HTML or text.
 * Templates using the 0.3 language (sections, loops, filters, content blocks) are compiled
 * and rendered by template_lang.c; plain templates keep the code below.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/varlena.h"

#include "outreach.h"
#include "template_lang.h"

PG_FUNCTION_INFO_V1(outreach_template_tokens);
PG_FUNCTION_INFO_V1(outreach_render);
PG_FUNCTION_INFO_V1(outreach_sms_segments);

/* One token of a template, as parsed. */
typedef struct TemplateToken
{
	int			start;			/* byte offset of "{{" */
	int			end;			/* byte offset just past "}}" */
	char	   *path;			/* e.g. "contact.first_name" */
	char	   *default_value;	/* NULL when no default was given */
} TemplateToken;

/* 1-based character position of byte offset off in s (multibyte-aware). */
static int
char_position(const char *s, int off)
{
	return pg_mbstrlen_with_len(s, off) + 1;
}

static void
token_syntax_error(const char *part, const char *s, int off, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("syntax error in template %s at character %d", part, char_position(s, off)),
			 errdetail("Expected %s.", expected),
			 errhint("Tokens are written {{contact.first_name}} or {{contact.first_name | default: 'there'}}.")));
}

static inline bool
is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool
is_ident_char(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int
skip_spaces(const char *s, int i, int len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/*
 * Parse the token that starts at byte offset start ("{{").  Fills tok; errors name the
 * template part (body, subject) and the character position.
 */
static void
parse_token(const char *part, const char *s, int len, int start, TemplateToken *tok)
{
	int			i = start + 2;
	int			path_start;
	StringInfoData def;

	tok->start = start;
	tok->default_value = NULL;

	/* a token must be closed before the text ends */
	{
		bool		closed = false;

		for (int j = i; j + 1 < len; j++)
			if (s[j] == '}' && s[j + 1] == '}')
			{
				closed = true;
				break;
			}
		if (!closed)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("unterminated template token in %s at character %d", part, char_position(s, start)),
					 errdetail("A token opened with \"{{\" is not closed with \"}}\"."),
					 errhint("Close the token, e.g. {{contact.first_name}}.")));
	}

	i = skip_spaces(s, i, len);
	path_start = i;
	for (;;)
	{
		if (i >= len || !is_ident_start(s[i]))
			token_syntax_error(part, s, i, "a token name such as contact.first_name");
		while (i < len && is_ident_char(s[i]))
			i++;
		if (i < len && s[i] == '.')
		{
			i++;
			continue;
		}
		break;
	}
	tok->path = pnstrdup(s + path_start, i - path_start);
	i = skip_spaces(s, i, len);

	if (i < len && s[i] == '|')
	{
		char		quote;

		i = skip_spaces(s, i + 1, len);
		if (i + 7 > len || strncmp(s + i, "default", 7) != 0 || (i + 7 < len && is_ident_char(s[i + 7])))
			token_syntax_error(part, s, i, "\"default\" after \"|\" (the only filter)");
		i = skip_spaces(s, i + 7, len);
		if (i >= len || s[i] != ':')
			token_syntax_error(part, s, i, "\":\" after \"default\"");
		i = skip_spaces(s, i + 1, len);
		if (i >= len || (s[i] != '\'' && s[i] != '"'))
			token_syntax_error(part, s, i, "a quoted default value, e.g. 'there'");
		quote = s[i++];
		initStringInfo(&def);
		for (;;)
		{
			if (i >= len)
				token_syntax_error(part, s, i, "the closing quote of the default value");
			if (s[i] == quote)
			{
				if (i + 1 < len && s[i + 1] == quote)
				{
					appendStringInfoChar(&def, quote);
					i += 2;
					continue;
				}
				i++;
				break;
			}
			appendStringInfoChar(&def, s[i++]);
		}
		tok->default_value = def.data;
		i = skip_spaces(s, i, len);
	}

	if (i + 1 >= len || s[i] != '}' || s[i + 1] != '}')
		token_syntax_error(part, s, i, "\"}}\" to close the token");
	tok->end = i + 2;
}

/* Offset of the next "{{" at or after i, or -1. */
static int
next_token_start(const char *s, int len, int i)
{
	for (; i + 1 < len; i++)
		if (s[i] == '{' && s[i + 1] == '{')
			return i;
	return -1;
}

/* Array of text (no NULLs wanted in allowed) to C strings. */
static char **
text_array_to_cstrings(ArrayType *arr, int *n, bool **nulls_out)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("a one-dimensional array is required")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(char *) * (*n + 1));
	for (int i = 0; i < *n; i++)
		out[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	if (nulls_out)
		*nulls_out = nulls;
	return out;
}

/*
 * outreach._template_tokens(body text, allowed text[], part text DEFAULT 'body') -> text[]
 * The distinct token paths of body, in order of first use.  Refuses syntax errors and
 * tokens not in allowed.
 */
Datum
outreach_template_tokens(PG_FUNCTION_ARGS)
{
	char	   *s;
	int			len;
	char	  **allowed;
	int			nallowed;
	const char *part;
	List	   *paths = NIL;
	int			i = 0;
	int			start;
	ArrayBuildState *astate = NULL;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("outreach._template_tokens needs the list of allowed tokens")));
	s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	len = strlen(s);
	allowed = text_array_to_cstrings(PG_GETARG_ARRAYTYPE_P(1), &nallowed, NULL);
	part = PG_ARGISNULL(2) ? "body" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (tl_is_extended(s, len))	/* sections, loops, filters, blocks: template_lang.c */
		paths = tl_compile(part, s, len, allowed, nallowed), i = len;

	while ((start = next_token_start(s, len, i)) >= 0)
	{
		TemplateToken tok;
		bool		known = false;
		bool		seen = false;

		parse_token(part, s, len, start, &tok);
		for (int k = 0; k < nallowed && !known; k++)
			known = allowed[k] && strcmp(allowed[k], tok.path) == 0;
		if (!known)
		{
			const char *best = NULL;
			int			best_d = PG_INT32_MAX;
			int			plen = strlen(tok.path);

			for (int k = 0; k < nallowed; k++)
			{
				int			d;

				if (!allowed[k])
					continue;
				d = varstr_levenshtein_less_equal(tok.path, plen, allowed[k], strlen(allowed[k]),
												  1, 1, 1, Max(3, plen / 3), true);
				if (d < best_d)
				{
					best_d = d;
					best = allowed[k];
				}
			}
			if (best && best_d > Max(3, plen / 3))
				best = NULL;
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown template token \"%s\" in %s at character %d",
							tok.path, part, char_position(s, start)),
					 errdetail("Tokens are contact.<column>, contact.account.<column>, unsubscribe_url and sender.postal_address."),
					 best ? errhint("Did you mean \"%s\"?", best) : 0));
		}
		foreach(lc, paths)
			if (strcmp((char *) lfirst(lc), tok.path) == 0)
				seen = true;
		if (!seen)
			paths = lappend(paths, tok.path);
		i = tok.end;
	}

	foreach(lc, paths)
		astate = accumArrayResult(astate, CStringGetTextDatum((char *) lfirst(lc)), false,
								  TEXTOID, CurrentMemoryContext);
	if (astate == NULL)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(TEXTOID));
	PG_RETURN_DATUM(makeArrayResult(astate, CurrentMemoryContext));
}

/*
 * A substituted value is one line: control characters (line breaks above all, which in a
 * subject would start another mail header) are folded to a space.  Tab is kept.
 */
static inline char
fold_control(char c)
{
	return ((unsigned char) c < 0x20 && c != '\t') || c == 0x7f ? ' ' : c;
}

static void
append_folded(StringInfo buf, const char *v)
{
	for (; *v; v++)
		appendStringInfoChar(buf, fold_control(*v));
}

static void
append_html_escaped(StringInfo buf, const char *v)
{
	for (; *v; v++)
	{
		switch (fold_control(*v))
		{
			case '&':
				appendStringInfoString(buf, "&amp;");
				break;
			case '<':
				appendStringInfoString(buf, "&lt;");
				break;
			case '>':
				appendStringInfoString(buf, "&gt;");
				break;
			case '"':
				appendStringInfoString(buf, "&quot;");
				break;
			case '\'':
				appendStringInfoString(buf, "&#39;");
				break;
			default:
				appendStringInfoChar(buf, fold_control(*v));
		}
	}
}

/*
 * outreach._render(body text, html boolean, keys text[], vals text[]) -> text
 * Substitutes every token with vals[k] where keys[k] is the token's path.  A NULL or empty
 * value (or a path not in keys) renders the token's default, or nothing.  With html, values
 * and defaults are HTML-escaped.  Either way control characters in them become spaces.
 */
Datum
outreach_render(PG_FUNCTION_ARGS)
{
	char	   *s;
	int			len;
	bool		html;
	char	  **keys;
	char	  **vals;
	int			nkeys;
	int			nvals;
	int			i = 0;
	int			start;
	StringInfoData out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	len = strlen(s);
	html = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
	{
		keys = vals = NULL;
		nkeys = nvals = 0;
	}
	else
	{
		keys = text_array_to_cstrings(PG_GETARG_ARRAYTYPE_P(2), &nkeys, NULL);
		vals = text_array_to_cstrings(PG_GETARG_ARRAYTYPE_P(3), &nvals, NULL);
		if (nkeys != nvals)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("template keys and values differ in length (%d and %d)", nkeys, nvals)));
	}

	if (tl_is_extended(s, len))	/* sections, loops, filters, blocks: template_lang.c */
	{
		int			outlen;
		char	   *r = tl_render(s, len, html, keys, vals, nkeys, &outlen);

		PG_RETURN_TEXT_P(cstring_to_text_with_len(r, outlen));
	}
	initStringInfo(&out);
	while ((start = next_token_start(s, len, i)) >= 0)
	{
		TemplateToken tok;
		const char *value = NULL;

		appendBinaryStringInfo(&out, s + i, start - i);
		parse_token("text", s, len, start, &tok);
		for (int k = 0; k < nkeys; k++)
			if (keys[k] && strcmp(keys[k], tok.path) == 0)
			{
				value = vals[k];
				break;
			}
		if (value == NULL || value[0] == '\0')
			value = tok.default_value;
		if (value)
		{
			if (html)
				append_html_escaped(&out, value);
			else
				append_folded(&out, value);
		}
		i = tok.end;
	}
	appendBinaryStringInfo(&out, s + i, len - i);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * GSM 03.38 default alphabet as Unicode code points (one septet each), and the extension
 * table (escape + one septet: two each).
 */
static const pg_wchar gsm7_basic[] = {
	'@', 0x00A3, '$', 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, '\n', 0x00D8, 0x00F8, '\r', 0x00C5, 0x00E5,
	0x0394, '_', 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x00C6, 0x00E6, 0x00DF, 0x00C9,
	' ', '!', '"', '#', 0x00A4, '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	0x00A1, 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
	0x00BF, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0
};
static const pg_wchar gsm7_extension[] = {'\f', '^', '{', '}', '\\', '[', '~', ']', '|', 0x20AC};

static bool
in_table(pg_wchar c, const pg_wchar *table, int n)
{
	for (int i = 0; i < n; i++)
		if (table[i] == c)
			return true;
	return false;
}

/*
 * outreach.sms_segments(text) -> int
 * GSM-7 text: 160 septets fit one SMS, longer texts go in parts of 153.  Anything outside
 * GSM-7 makes the whole message UCS-2: 70 UTF-16 units in one SMS, else parts of 67.
 * The empty text needs no SMS (0).
 */
Datum
outreach_sms_segments(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *s = text_to_cstring(t);
	char	   *u;
	int			len;
	int			septets = 0;
	int			units = 0;
	bool		gsm = true;
	const unsigned char *p;
	const unsigned char *end;

	u = (char *) pg_do_encoding_conversion((unsigned char *) s, strlen(s), GetDatabaseEncoding(), PG_UTF8);
	len = strlen(u);
	p = (const unsigned char *) u;
	end = p + len;
	while (p < end)
	{
		int			l = pg_utf_mblen(p);
		pg_wchar	c;

		if (p + l > end)
			l = end - p;
		c = utf8_to_unicode(p);
		p += l;
		units += (c > 0xFFFF) ? 2 : 1;
		if (in_table(c, gsm7_basic, lengthof(gsm7_basic)))
			septets += 1;
		else if (in_table(c, gsm7_extension, lengthof(gsm7_extension)))
			septets += 2;
		else
			gsm = false;
	}
	if (gsm)
		PG_RETURN_INT32(septets == 0 ? 0 : septets <= 160 ? 1 : (septets + 152) / 153);
	PG_RETURN_INT32(units <= 70 ? 1 : (units + 66) / 67);
}
