/*
 * access.c: the C side of access control (sql/parts/98_access.sql).
 *
 * Owns outreach._scope() (the organizations a policy lets the current user see, kept per
 * transaction), compile/validate behind the segmentation check, and
 * outreach._template_html_check(body, part): where a template token may stand in an
 * HTML body.  The renderer HTML-escapes every value (&, <, >, ", '), which is safe in text
 * and inside a quoted attribute value, and nowhere else:
 *   - inside a tag outside a quoted value (an unquoted value, an attribute or tag name), a
 *     space in the value starts a new attribute (`<img alt={{x}}>` with x = `a onerror=...`);
 *   - inside <script> or <style> the browser does not decode entities, and the value is code;
 *   - inside an event handler (on...) or style attribute the decoded value is code;
 *   - at the start of a URL attribute (href, src, action, formaction, ...) a contact's value
 *     would choose the scheme (`javascript:`); the extension's own URLs (unsubscribe_url)
 *     may stand there.
 * Those positions are refused when the template is saved, with the character position.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(outreach_template_html_check);
PG_FUNCTION_INFO_V1(outreach_compile_checked);
PG_FUNCTION_INFO_V1(outreach_validate_checked);

/* The compiler's entry points (query_compile.c). */
extern Datum outreach_compile(PG_FUNCTION_ARGS);
extern Datum outreach_validate(PG_FUNCTION_ARGS);

/*
 * outreach._check_segmentation(q) for the query in argument 0: raises when the caller may
 * not segment on an entity or field it uses.
 */
static void
check_segmentation(FunctionCallInfo fcinfo)
{
	Oid			fn;

	if (PG_ARGISNULL(0))
		return;
	fn = DatumGetObjectId(DirectFunctionCall1(to_regprocedure,
											  CStringGetTextDatum("outreach._check_segmentation(outreach.segment_query)")));
	if (!OidIsValid(fn))
		elog(ERROR, "outreach._check_segmentation(outreach.segment_query) is missing");
	OidFunctionCall1(fn, PG_GETARG_DATUM(0));
}

/*
 * outreach.compile and outreach.validate: the compiler's functions, after the check of the
 * caller's segmentation rights.  Same arguments, same results, same errors.
 */
Datum
outreach_compile_checked(PG_FUNCTION_ARGS)
{
	check_segmentation(fcinfo);
	return outreach_compile(fcinfo);
}

Datum
outreach_validate_checked(PG_FUNCTION_ARGS)
{
	Datum		result = outreach_validate(fcinfo);

	check_segmentation(fcinfo);
	return result;
}

typedef enum HtmlState
{
	HS_DATA,					/* text between tags */
	HS_COMMENT,					/* <!-- ... --> */
	HS_TAG,						/* inside <...>, outside any attribute value */
	HS_VALUE_DQ,				/* "..." attribute value */
	HS_VALUE_SQ,				/* '...' attribute value */
	HS_VALUE_UNQUOTED,			/* unquoted attribute value */
	HS_RAWTEXT					/* content of <script> or <style> */
} HtmlState;

static bool
starts_with_ci(const char *s, int len, int i, const char *prefix)
{
	int			n = strlen(prefix);

	return i + n <= len && pg_strncasecmp(s + i, prefix, n) == 0;
}

static bool
is_url_attribute(const char *name)
{
	static const char *const urls[] = {"href", "src", "action", "formaction", "background", "poster",
	"cite", "data", "srcset", "xlink:href", "manifest", "codebase", "longdesc", "usemap", NULL};

	for (int k = 0; urls[k]; k++)
		if (pg_strcasecmp(name, urls[k]) == 0)
			return true;
	return false;
}

static void
refuse(const char *part, const char *s, int off, const char *where, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("template token %s in %s at character %d", where, part, pg_mbstrlen_with_len(s, off) + 1),
			 errdetail("Values are HTML-escaped, which protects text and quoted attribute values only."),
			 errhint("%s", hint)));
}

/*
 * outreach._template_html_check(body text, part text) -> void
 */
Datum
outreach_template_html_check(PG_FUNCTION_ARGS)
{
	char	   *s;
	const char *part;
	int			len;
	int			i = 0;
	HtmlState	state = HS_DATA;
	char		tag[32] = "";
	char		attr[32] = "";
	char		rawtext_end[16] = "";
	int			value_start = -1;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	part = PG_ARGISNULL(1) ? "body" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	len = strlen(s);

	while (i < len)
	{
		char		c = s[i];

		if (c == '{' && i + 1 < len && s[i + 1] == '{')
		{
			switch (state)
			{
				case HS_DATA:
				case HS_COMMENT:
					break;
				case HS_RAWTEXT:
					refuse(part, s, i, tag[0] == 's' && tag[1] == 'c' ? "inside <script>" : "inside <style>",
						   "Put the value in the text of the message or in a quoted attribute of an ordinary element.");
					break;
				case HS_TAG:
				case HS_VALUE_UNQUOTED:
					refuse(part, s, i, "in an unquoted attribute value or inside a tag",
						   "Quote the attribute value: alt=\"{{contact.first_name}}\".");
					break;
				case HS_VALUE_DQ:
				case HS_VALUE_SQ:
					if (pg_strncasecmp(attr, "on", 2) == 0 || pg_strcasecmp(attr, "style") == 0)
						refuse(part, s, i, psprintf("in the %s attribute", attr),
							   "Event handler and style attributes are code; values cannot be placed there safely.");
					if (is_url_attribute(attr) && starts_with_ci(s, len, i + 2 + strspn(s + i + 2, " "), "contact."))
					{
						bool		at_start = true;

						for (int k = value_start; k < i; k++)
							if (!isspace((unsigned char) s[k]))
								at_start = false;
						if (at_start)
							refuse(part, s, i, psprintf("at the start of the %s attribute", attr),
								   "Begin the URL with its scheme and host, e.g. href=\"https://example.org/?id={{contact.external_id}}\".");
					}
					break;
			}
			i += 2;
			continue;
		}

		switch (state)
		{
			case HS_DATA:
				if (c == '<')
				{
					if (starts_with_ci(s, len, i, "<!--"))
					{
						state = HS_COMMENT;
						i += 4;
						continue;
					}
					if (i + 1 < len && (isalpha((unsigned char) s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!' || s[i + 1] == '?'))
					{
						int			k = 0;
						int			j = i + 1;

						if (s[j] == '/')
							j++;
						while (j < len && k < (int) sizeof(tag) - 1 && (isalnum((unsigned char) s[j]) || s[j] == '-' || s[j] == ':'))
							tag[k++] = pg_tolower((unsigned char) s[j++]);
						tag[k] = '\0';
						if (s[i + 1] == '/')
							tag[0] = '\0';	/* an end tag never starts raw text */
						attr[0] = '\0';
						state = HS_TAG;
						i = j;
						continue;
					}
				}
				break;
			case HS_COMMENT:
				if (starts_with_ci(s, len, i, "-->"))
				{
					state = HS_DATA;
					i += 3;
					continue;
				}
				break;
			case HS_TAG:
				if (c == '>')
				{
					if (strcmp(tag, "script") == 0 || strcmp(tag, "style") == 0)
					{
						snprintf(rawtext_end, sizeof(rawtext_end), "</%s", tag);
						state = HS_RAWTEXT;
					}
					else
						state = HS_DATA;
				}
				else if (c == '=')
				{
					int			j = i + 1;

					while (j < len && isspace((unsigned char) s[j]))
						j++;
					if (j < len && s[j] == '"')
					{
						state = HS_VALUE_DQ;
						value_start = j + 1;
						i = j + 1;
						continue;
					}
					if (j < len && s[j] == '\'')
					{
						state = HS_VALUE_SQ;
						value_start = j + 1;
						i = j + 1;
						continue;
					}
					state = HS_VALUE_UNQUOTED;
					i = j;
					continue;
				}
				else if (isalpha((unsigned char) c))
				{
					int			k = 0;

					while (i < len && k < (int) sizeof(attr) - 1 && !isspace((unsigned char) s[i]) &&
						   s[i] != '=' && s[i] != '>' && s[i] != '/' && !(s[i] == '{' && i + 1 < len && s[i + 1] == '{'))
						attr[k++] = s[i++];
					attr[k] = '\0';
					continue;
				}
				break;
			case HS_VALUE_DQ:
				if (c == '"')
					state = HS_TAG;
				break;
			case HS_VALUE_SQ:
				if (c == '\'')
					state = HS_TAG;
				break;
			case HS_VALUE_UNQUOTED:
				if (isspace((unsigned char) c))
					state = HS_TAG;
				else if (c == '>')
				{
					state = HS_TAG; /* which ends the tag */
					continue;
				}
				break;
			case HS_RAWTEXT:
				if (starts_with_ci(s, len, i, rawtext_end))
				{
					state = HS_TAG;
					tag[0] = '\0';
					i += strlen(rawtext_end);
					continue;
				}
				break;
		}
		i++;
	}
	PG_RETURN_VOID();
}

/*
 * outreach._scope(): the organizations the current user sees, as policies read it (NULL:
 * all).  The policies of one statement evaluate it several times (one InitPlan each) and a
 * transaction of single-row writes once per statement, so the result of the SQL that
 * computes it (outreach._scope_compute()) is kept for the current user until the end of the
 * transaction, a rolled-back subtransaction, or a change of organization_grant in this
 * transaction (outreach._scope_reset(), called by a trigger on it).  A grant committed by
 * another session is seen by the next transaction.
 */
PG_FUNCTION_INFO_V1(outreach_scope);
PG_FUNCTION_INFO_V1(outreach_scope_reset);

static bool scope_valid = false;
static bool scope_callbacks = false;
static Oid	scope_user = InvalidOid;
static bool scope_isnull = true;
static Datum scope_value = (Datum) 0;	/* in TopTransactionContext */

static void
scope_xact_callback(XactEvent event, void *arg)
{
	scope_valid = false;
}

static void
scope_subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		scope_valid = false;
}

Datum
outreach_scope(PG_FUNCTION_ARGS)
{
	Oid			user = GetUserId();

	if (!scope_callbacks)
	{
		RegisterXactCallback(scope_xact_callback, NULL);
		RegisterSubXactCallback(scope_subxact_callback, NULL);
		scope_callbacks = true;
	}
	if (!scope_valid || scope_user != user)
	{
		int			ret;
		bool		isnull;
		Datum		value;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		ret = SPI_execute("SELECT outreach._scope_compute()", true, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "outreach._scope_compute() returned %d", ret);
		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		scope_isnull = isnull;
		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

			scope_value = PointerGetDatum(PG_DETOAST_DATUM_COPY(value));
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
		scope_user = user;
		scope_valid = true;
	}
	if (scope_isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PointerGetDatum(PG_DETOAST_DATUM_COPY(scope_value)));
}

/* trigger on organization_grant: the next _scope() recomputes */
Datum
outreach_scope_reset(PG_FUNCTION_ARGS)
{
	scope_valid = false;
	return PointerGetDatum(NULL);
}
