/*
 * operations.c: what makes errors from outreach's API readable (issue 11).
 *
 * An error raised deep inside outreach (a check in a helper called by a helper of
 * create_segment) reached the user with one CONTEXT line per internal PL/pgSQL frame and
 * statement.  An emit_log_hook removes those frames: the entries "PL/pgSQL function
 * outreach.*" and the "SQL statement"/"SQL expression" entries executed inside them, so what
 * is left is the context of the user's own code (their functions, a COPY line).  The message,
 * DETAIL and HINT are untouched.  outreach.error_context = full keeps everything (for
 * debugging outreach itself); it applies in sessions where the library is loaded (any use of
 * segments, triggers or the query type loads it; session_preload_libraries makes it
 * certain).
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/guc.h"

#include "outreach.h"

typedef enum
{
	ERROR_CONTEXT_USER,
	ERROR_CONTEXT_FULL
}			ErrorContextMode;

static const struct config_enum_entry error_context_options[] = {
	{"user", ERROR_CONTEXT_USER, false},
	{"full", ERROR_CONTEXT_FULL, false},
	{NULL, 0, false}
};

static int	error_context_mode = ERROR_CONTEXT_USER;
static emit_log_hook_type prev_emit_log_hook = NULL;

/* Does a context line start a new entry (rather than continue a multi-line statement)? */
static bool
starts_entry(const char *line)
{
	static const char *const prefixes[] = {
		"PL/pgSQL function ", "SQL statement \"", "SQL expression \"", "SQL function \"",
		"PL/pgSQL assignment ", "COPY ", "portal \"", "parallel worker", "extension script ",
		"processing ", "while ", "JSON data", "unnamed portal", NULL
	};

	for (int i = 0; prefixes[i]; i++)
		if (strncmp(line, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static bool
is_outreach_frame(const char *entry)
{
	return strncmp(entry, "PL/pgSQL function outreach.", strlen("PL/pgSQL function outreach.")) == 0;
}

static bool
is_statement(const char *entry)
{
	return strncmp(entry, "SQL statement \"", 15) == 0 || strncmp(entry, "SQL expression \"", 16) == 0;
}

/* The context without outreach's internal frames; NULL when nothing is left. */
static char *
strip_outreach_frames(const char *context)
{
	List	   *entries = NIL;
	StringInfoData cur;
	StringInfoData out;
	const char *p = context;
	ListCell   *lc;
	int			n;
	int			i = 0;
	bool	   *drop;

	/* split into entries (innermost first), a statement may span several lines */
	initStringInfo(&cur);
	while (*p)
	{
		const char *eol = strchr(p, '\n');
		int			len = eol ? (int) (eol - p) : (int) strlen(p);

		if (cur.len > 0 && starts_entry(p))
		{
			entries = lappend(entries, pstrdup(cur.data));
			resetStringInfo(&cur);
		}
		if (cur.len > 0)
			appendStringInfoChar(&cur, '\n');
		appendBinaryStringInfo(&cur, p, len);
		p += len;
		if (*p == '\n')
			p++;
	}
	if (cur.len > 0)
		entries = lappend(entries, pstrdup(cur.data));

	n = list_length(entries);
	drop = palloc0(sizeof(bool) * (n + 1));
	foreach(lc, entries)
	{
		const char *e = lfirst(lc);

		if (is_outreach_frame(e))
			drop[i] = true;
		/* a statement belongs to the frame that follows it (the function that ran it) */
		else if (is_statement(e) && i + 1 < n && is_outreach_frame(list_nth(entries, i + 1)))
			drop[i] = true;
		i++;
	}

	initStringInfo(&out);
	i = 0;
	foreach(lc, entries)
	{
		if (!drop[i])
		{
			if (out.len > 0)
				appendStringInfoChar(&out, '\n');
			appendStringInfoString(&out, (const char *) lfirst(lc));
		}
		i++;
	}
	return out.len > 0 ? out.data : NULL;
}

static void
outreach_emit_log_hook(ErrorData *edata)
{
	if (error_context_mode == ERROR_CONTEXT_USER && edata->context != NULL &&
		strstr(edata->context, "PL/pgSQL function outreach.") != NULL)
		edata->context = strip_outreach_frames(edata->context);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
outreach_operations_init(void)
{
	DefineCustomEnumVariable("outreach.error_context",
							 "Which CONTEXT lines errors and notices raised inside outreach carry.",
							 "user (the default) leaves out outreach's internal PL/pgSQL frames, "
							 "keeping the context of the caller's own code; full keeps every frame.",
							 &error_context_mode,
							 ERROR_CONTEXT_USER,
							 error_context_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = outreach_emit_log_hook;
}

/*
 * outreach._restoring(): true while a dump's COPY restores table data (check_function_bodies
 * off, as pg_dump's script sets it, and the statement is a COPY).  The restore guards call it
 * in the WHEN clause of every trigger that must not fire during a restore, so it runs for
 * every write: in C, a WHEN clause costs no parsing (as an SQL function it was inlined, so
 * parsed and planned, at every statement: 20% of a single-row write that changed membership).
 */
PG_FUNCTION_INFO_V1(outreach_restoring);

Datum
outreach_restoring(PG_FUNCTION_ARGS)
{
	const char *q = debug_query_string;

	if (check_function_bodies || q == NULL)
		PG_RETURN_BOOL(false);
	while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r' || *q == '\f' || *q == '\v')
		q++;
	PG_RETURN_BOOL(pg_strncasecmp(q, "copy", 4) == 0 &&
				   (q[4] == ' ' || q[4] == '\t' || q[4] == '\n' || q[4] == '\r' || q[4] == '\f' || q[4] == '\v'));
}
