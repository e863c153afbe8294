/*
 * render_batch.c: template rendering for the set-based journey tick.
 *
 * outreach._render_contact(template, html, tokens, contact, account, unsubscribe_url,
 * postal_address) renders one template text for one contact row inside the statement
 * that queues a whole batch of messages, so no PL/pgSQL runs per message and no JSON is
 * built per contact.  It looks up only the tokens the template uses (template.tokens,
 * checked when the template was saved), formats each value the way
 * outreach._render_for does (the text of to_jsonb: booleans true/false, dates and times
 * in ISO 8601), and hands the keys and values to the shared renderer
 * (outreach_render in render.c), so escaping and defaults are the same on both paths.
 * Tokens of other families (added by later parts) are not handled here: the tick sends
 * such templates through outreach._render_for instead.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "outreach.h"

PG_FUNCTION_INFO_V1(outreach_render_contact);

extern Datum outreach_render(PG_FUNCTION_ARGS);

/* Where a token's value comes from. */
typedef enum TokenSource
{
	SRC_CONTACT,
	SRC_ACCOUNT,
	SRC_UNSUBSCRIBE,
	SRC_POSTAL,
	SRC_NONE
} TokenSource;

typedef struct TokenPlan
{
	char	   *path;
	TokenSource source;
	int			attnum;			/* 1-based attribute of the contact or account row; 0: none */
	Oid			typid;
	FmgrInfo	out;			/* output function of the attribute's type */
} TokenPlan;

/* Cached per call site: the plan of the last tokens array seen (templates repeat in a batch). */
typedef struct RenderCache
{
	char	   *tokens_key;		/* the tokens joined by '\n' */
	int			ntokens;
	TokenPlan  *plans;
	Oid			contact_type;
	Oid			account_type;
	Datum	   *keys;			/* text datums of the token paths */
} RenderCache;

static int
find_attribute(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i + 1;
	}
	return 0;
}

static void
plan_attribute(TokenPlan *plan, Oid rowtype, const char *name)
{
	TupleDesc	desc = lookup_rowtype_tupdesc(rowtype, -1);
	Oid			outfn;
	bool		varlena;

	plan->attnum = find_attribute(desc, name);
	if (plan->attnum > 0)
	{
		plan->typid = TupleDescAttr(desc, plan->attnum - 1)->atttypid;
		getTypeOutputInfo(plan->typid, &outfn, &varlena);
		fmgr_info_cxt(outfn, &plan->out, CurrentMemoryContext);
	}
	ReleaseTupleDesc(desc);
}

/* Build (or reuse) the plan for this tokens array. */
static RenderCache *
get_plan(FunctionCallInfo fcinfo, ArrayType *tokens)
{
	RenderCache *cache = (RenderCache *) fcinfo->flinfo->fn_extra;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	StringInfoData key;
	MemoryContext old;

	deconstruct_array(tokens, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	initStringInfo(&key);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		appendStringInfoString(&key, TextDatumGetCString(elems[i]));
		appendStringInfoChar(&key, '\n');
	}
	if (cache && strcmp(cache->tokens_key, key.data) == 0)
		return cache;

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (cache == NULL)
	{
		cache = palloc0(sizeof(RenderCache));
		cache->contact_type = get_fn_expr_argtype(fcinfo->flinfo, 3);
		cache->account_type = get_fn_expr_argtype(fcinfo->flinfo, 4);
		if (!OidIsValid(cache->contact_type) || !OidIsValid(cache->account_type))
			elog(ERROR, "outreach._render_contact: could not determine the row types of its arguments");
		fcinfo->flinfo->fn_extra = cache;
	}
	cache->tokens_key = pstrdup(key.data);
	cache->ntokens = 0;
	cache->plans = palloc0(sizeof(TokenPlan) * Max(n, 1));
	cache->keys = palloc0(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		TokenPlan  *p;
		char	   *path;

		if (nulls[i])
			continue;
		path = TextDatumGetCString(elems[i]);
		p = &cache->plans[cache->ntokens];
		p->path = path;
		p->source = SRC_NONE;
		if (strcmp(path, "unsubscribe_url") == 0)
			p->source = SRC_UNSUBSCRIBE;
		else if (strcmp(path, "sender.postal_address") == 0)
			p->source = SRC_POSTAL;
		else if (strncmp(path, "contact.account.", 16) == 0)
		{
			p->source = SRC_ACCOUNT;
			plan_attribute(p, cache->account_type, path + 16);
		}
		else if (strncmp(path, "contact.", 8) == 0)
		{
			p->source = SRC_CONTACT;
			plan_attribute(p, cache->contact_type, path + 8);
		}
		cache->keys[cache->ntokens] = CStringGetTextDatum(path);
		cache->ntokens++;
	}
	MemoryContextSwitchTo(old);
	return cache;
}

/* The text of a value as jsonb_each_text(to_jsonb(row)) gives it. */
static char *
format_value(TokenPlan *p, Datum value)
{
	switch (p->typid)
	{
		case BOOLOID:
			return pstrdup(DatumGetBool(value) ? "true" : "false");
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return JsonEncodeDateTime(NULL, value, p->typid, NULL);
		default:
			return OutputFunctionCall(&p->out, value);
	}
}

static Datum
row_value(HeapTupleHeader row, Oid rowtype, TokenPlan *p, bool *isnull)
{
	HeapTupleData tuple;
	TupleDesc	desc;
	Datum		d;

	if (row == NULL || p->attnum == 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	tuple.t_len = HeapTupleHeaderGetDatumLength(row);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = row;
	desc = lookup_rowtype_tupdesc(rowtype, -1);
	d = heap_getattr(&tuple, p->attnum, desc, isnull);
	ReleaseTupleDesc(desc);
	return d;
}

Datum
outreach_render_contact(PG_FUNCTION_ARGS)
{
	RenderCache *cache;
	HeapTupleHeader contact;
	HeapTupleHeader account;
	Datum	   *vals;
	bool	   *vnulls;
	int			dims[1];
	int			lbs[1] = {1};
	ArrayType  *keys;
	ArrayType  *values;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("outreach._render_contact needs the template's tokens and a contact"),
				 errhint("Pass template.tokens and the contact row.")));

	cache = get_plan(fcinfo, PG_GETARG_ARRAYTYPE_P(2));
	contact = PG_GETARG_HEAPTUPLEHEADER(3);
	account = PG_ARGISNULL(4) ? NULL : PG_GETARG_HEAPTUPLEHEADER(4);

	vals = palloc(sizeof(Datum) * Max(cache->ntokens, 1));
	vnulls = palloc(sizeof(bool) * Max(cache->ntokens, 1));
	for (int i = 0; i < cache->ntokens; i++)
	{
		TokenPlan  *p = &cache->plans[i];
		bool		isnull = true;
		Datum		d = (Datum) 0;

		switch (p->source)
		{
			case SRC_UNSUBSCRIBE:
				isnull = PG_ARGISNULL(5);
				if (!isnull)
					d = PG_GETARG_DATUM(5);
				break;
			case SRC_POSTAL:
				isnull = PG_ARGISNULL(6);
				if (!isnull)
					d = PG_GETARG_DATUM(6);
				break;
			case SRC_CONTACT:
			case SRC_ACCOUNT:
				{
					Datum		raw = row_value(p->source == SRC_CONTACT ? contact : account,
												p->source == SRC_CONTACT ? cache->contact_type : cache->account_type,
												p, &isnull);

					if (!isnull)
						d = CStringGetTextDatum(format_value(p, raw));
				}
				break;
			case SRC_NONE:
				break;
		}
		vals[i] = d;
		vnulls[i] = isnull;
	}
	dims[0] = cache->ntokens;
	keys = construct_md_array(cache->keys, NULL, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
	values = construct_md_array(vals, vnulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
	if (cache->ntokens == 0)
	{
		keys = construct_empty_array(TEXTOID);
		values = construct_empty_array(TEXTOID);
	}
	PG_RETURN_DATUM(DirectFunctionCall4(outreach_render, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1),
										PointerGetDatum(keys), PointerGetDatum(values)));
}
