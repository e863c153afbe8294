/*
 * query_compile.c: validation of a segment query against the entity registry, and its
 * compilation to SQL.
 *
 * The compiler walks the tree once.  Every name is checked against the registry (entities,
 * their columns, the links between them, value sets, segments) and every literal against
 * the type of the field it is compared with; errors name the problem, the character
 * position in the query and, for names, the closest registered one.  Identifiers in the
 * output come only from the registry and the catalogs and are quoted; literals go through
 * quote_literal_cstr, numbers are re-checked character by character, dates are re-encoded.
 *
 * The SQL returns one column, contact_id, without duplicates.  Relations compile to
 * EXISTS / NOT EXISTS (semi- and anti-joins).  For the whole population, aggregates and
 * latest(...) compile to one grouped (or DISTINCT ON) subquery joined to the scope, never a
 * per-row loop; for the restricted variant (a handful of contacts, $1 bigint[]) they
 * compile to correlated subqueries, which are cheapest there.  Relative dates are computed
 * once per query: every expression reading the clock is a scalar subquery (an InitPlan).
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "funcapi.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "parser/parse_type.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "outreach.h"
#include "query.h"

PG_FUNCTION_INFO_V1(outreach_compile);

/*
 * Every operator, function and type in the generated SQL is schema-qualified, so that
 * nothing resolves through a search_path a writer controls (a public.count(text) or an
 * operator on (numeric, integer) in public would otherwise win over pg_catalog's); the
 * functions that run it also pin search_path = pg_catalog, pg_temp.  (EXTRACT, AT TIME
 * ZONE and the SQL-keyword types such as timestamp, interval, bigint are resolved in
 * pg_catalog by the grammar itself.)
 */
#define OP(o) "OPERATOR(pg_catalog." o ")"
PG_FUNCTION_INFO_V1(outreach_validate);
PG_FUNCTION_INFO_V1(outreach_query_dependencies);

/* ---------------------------------------------------------------------------------------
 * Registry snapshot
 * ------------------------------------------------------------------------------------- */

typedef struct EntityInfo
{
	char	   *name;
	Oid			relid;
	char	   *qualname;		/* quoted, schema-qualified table name */
	char	   *key_column;		/* NULL: none */
	char	   *time_column;	/* NULL: none */
} EntityInfo;

typedef struct LinkInfo
{
	char	   *entity;			/* entity.link_column references target's key */
	char	   *link_column;
	char	   *target;
} LinkInfo;

/* How a field compares: decides which values and operators it accepts. */
typedef enum FieldKind
{
	FK_TEXT, FK_NUMBER, FK_BOOL, FK_DATE, FK_TIMESTAMP, FK_TIMESTAMPTZ, FK_OTHER
} FieldKind;

typedef struct FieldInfo
{
	char	   *name;
	FieldKind	kind;
	Oid			typid;
	bool		is_age;			/* contact's virtual age */
	const char *label;			/* how messages name it when not a field (count(...)) */
	List	   *allowed;		/* enumerated values, or NIL */
	char	   *age_at;			/* is_age with "at <date>": SQL for that date (computed once), else NULL */
} FieldInfo;

/* The entity whose rows a condition is evaluated on, and its alias in the SQL. */
typedef struct Scope
{
	EntityInfo *entity;
	char		alias[16];
	bool		top;			/* the contact scope of the query itself */
} Scope;

typedef struct CompileState
{
	const CompileOptions *opts;
	const char *tz;				/* validated time zone name */
	List	   *entities;		/* EntityInfo * */
	List	   *links;			/* LinkInfo * */
	int			next_alias;
	List	   *segment_path;	/* names of segments being expanded, for cycle detection */
	struct Scope *contact_scope;	/* the row contact.field reads: the query's contact (or a join of it) */
	int			relation_depth; /* > 0 inside the filter of a relation (has, aggregates, latest) */
} CompileState;

static int	registry_hold = 0;
static bool held_valid = false;
static MemoryContext held_cxt = NULL;
static List *held_entities = NIL;
static List *held_links = NIL;

static MemoryContext
spi_connect_checked(void)
{
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return outer;
}

static char *
copy_value(MemoryContext outer, HeapTuple tup, TupleDesc desc, int col)
{
	MemoryContext old = MemoryContextSwitchTo(outer);
	char	   *v = SPI_getvalue(tup, desc, col);

	MemoryContextSwitchTo(old);
	return v;
}

static void
load_registry(CompileState *st)
{
	MemoryContext outer;
	int			ret;

	if (registry_hold > 0 && held_valid)
	{
		st->entities = held_entities;
		st->links = held_links;
		return;
	}
	outer = spi_connect_checked();
	if (registry_hold > 0)
		outer = held_cxt;		/* kept for the other compilations of the hold */

	ret = SPI_execute("SELECT e.name, e.relation::oid, e.key_column::text, e.time_column::text, "
					  "pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) "
					  "FROM outreach.entity e JOIN pg_catalog.pg_class c ON c.oid = e.relation "
					  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ORDER BY e.name",
					  true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading outreach.entity failed: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(outer);
		EntityInfo *e = palloc0(sizeof(EntityInfo));
		char	   *oidtxt;

		e->name = SPI_getvalue(tup, desc, 1);
		oidtxt = SPI_getvalue(tup, desc, 2);
		e->relid = (Oid) strtoul(oidtxt, NULL, 10);
		e->key_column = SPI_getvalue(tup, desc, 3);
		e->time_column = SPI_getvalue(tup, desc, 4);
		e->qualname = SPI_getvalue(tup, desc, 5);
		st->entities = lappend(st->entities, e);
		MemoryContextSwitchTo(old);
	}
	ret = SPI_execute("SELECT entity, link_column::text, target_entity FROM outreach.entity_link "
					  "ORDER BY entity, link_column", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading outreach.entity_link failed: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(outer);
		LinkInfo   *l = palloc0(sizeof(LinkInfo));

		l->entity = SPI_getvalue(tup, desc, 1);
		l->link_column = SPI_getvalue(tup, desc, 2);
		l->target = SPI_getvalue(tup, desc, 3);
		st->links = lappend(st->links, l);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	if (registry_hold > 0)
	{
		held_entities = st->entities;
		held_links = st->links;
		held_valid = true;
	}
}

/*
 * While held, the registry is read once and shared by every compilation (maintenance
 * compiles each live segment's relevance, back paths and delta per entity: reading the
 * registry each time made rebuilding the cache of 100 segments read it 300 times).  The
 * caller releases it (PG_FINALLY); nothing may change the registry in between.
 */
void
segment_query_registry_hold(bool hold)
{
	if (hold)
	{
		if (registry_hold++ == 0)
		{
			held_cxt = AllocSetContextCreate(TopMemoryContext, "outreach held registry", ALLOCSET_SMALL_SIZES);
			held_valid = false;
		}
	}
	else if (registry_hold > 0 && --registry_hold == 0)
	{
		MemoryContextDelete(held_cxt);
		held_cxt = NULL;
		held_valid = false;
		held_entities = held_links = NIL;
	}
}

/* ---------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------- */

/* 1-based character position of a 0-based node offset, for messages */
#define POS(loc) ((loc) < 0 ? 0 : (loc) + 1)

/* The candidate closest to name (edit distance), or NULL when nothing is close enough. */
static const char *
closest_name(const char *name, List *candidates)
{
	const char *best = NULL;
	int			best_score = INT_MAX;
	int			best_d = 0;
	int			best_len = 0;
	int			nlen = strlen(name);
	ListCell   *lc;

	foreach(lc, candidates)
	{
		const char *c = (const char *) lfirst(lc);
		int			clen = strlen(c);
		int			d = varstr_levenshtein(name, nlen, c, clen, 1, 1, 1, true);

		/* on a tie, prefer the candidate of the same length (a transposition) */
		int			score = 2 * d + (clen != nlen);

		if (score < best_score)
		{
			best_score = score;
			best = c;
			best_d = d;
			best_len = clen;
		}
	}
	/* a suggestion that shares little with the name is noise */
	if (best == NULL || (best_d > 2 && 2 * best_d >= Max(nlen, best_len)))
		return NULL;
	return best;
}

static char *
join_with(List *names, const char *quote, const char *sep)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, sep);
		appendStringInfo(&buf, "%s%s%s", quote, (char *) lfirst(lc), quote);
	}
	return buf.data;
}

static char *
join_names(List *names, const char *quote)
{
	return join_with(names, quote, ", ");
}

/* ---------------------------------------------------------------------------------------
 * Entities, fields, links
 * ------------------------------------------------------------------------------------- */

static List *
entity_names(CompileState *st)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, st->entities)
		names = lappend(names, ((EntityInfo *) lfirst(lc))->name);
	return names;
}

static EntityInfo *
find_entity(CompileState *st, const char *name)
{
	ListCell   *lc;

	foreach(lc, st->entities)
	{
		EntityInfo *e = lfirst(lc);

		if (strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

static EntityInfo *
require_entity(CompileState *st, const char *name, int location)
{
	EntityInfo *e = find_entity(st, name);

	if (e == NULL)
	{
		const char *near = closest_name(name, entity_names(st));

		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown entity \"%s\" at character %d", name, POS(location)),
				 errdetail("Registered entities: %s.", join_names(entity_names(st), "")),
				 near ? errhint("Did you mean \"%s\"?", near) :
				 errhint("Register the table with outreach.register_entity() first.")));
	}
	return e;
}

static List *
column_names(EntityInfo *e)
{
	List	   *names = NIL;
	HeapTuple	tp;
	int			natts;

	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(e->relid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for relation %u", e->relid);
	natts = ((Form_pg_class) GETSTRUCT(tp))->relnatts;
	ReleaseSysCache(tp);
	for (int i = 1; i <= natts; i++)
	{
		char	   *n = get_attname(e->relid, i, true);

		if (n)
			names = lappend(names, n);
	}
	if (strcmp(e->name, "contact") == 0)
		names = lappend(names, "age");
	return names;
}

static FieldKind
kind_of_type(Oid typid)
{
	Oid			base = getBaseType(typid);

	switch (base)
	{
		case DATEOID:
			return FK_DATE;
		case TIMESTAMPOID:
			return FK_TIMESTAMP;
		case TIMESTAMPTZOID:
			return FK_TIMESTAMPTZ;
		case BOOLOID:
			return FK_BOOL;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return FK_NUMBER;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			return FK_TEXT;
		default:
			return FK_OTHER;
	}
}

static const char *
kind_name(FieldKind k)
{
	switch (k)
	{
		case FK_TEXT:
			return "text";
		case FK_NUMBER:
			return "a number";
		case FK_BOOL:
			return "a boolean";
		case FK_DATE:
			return "a date";
		case FK_TIMESTAMP:
		case FK_TIMESTAMPTZ:
			return "a timestamp";
		default:
			return "of another type";
	}
}

static FieldInfo *
resolve_field(CompileState *st, EntityInfo *e, const char *name, int location)
{
	FieldInfo  *f = palloc0(sizeof(FieldInfo));
	AttrNumber	attnum = get_attnum(e->relid, name);

	f->name = pstrdup(name);
	if (attnum == InvalidAttrNumber || attnum < 0)
	{
		if (strcmp(e->name, "contact") == 0 && strcmp(name, "age") == 0 &&
			get_attnum(e->relid, "birthdate") > 0)
		{
			f->is_age = true;
			f->kind = FK_NUMBER;
			f->typid = INT4OID;
			return f;
		}
		{
			const char *near = closest_name(name, column_names(e));

			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("entity \"%s\" has no field \"%s\" at character %d", e->name, name, POS(location)),
					 near ? errhint("Did you mean \"%s\"?", near) :
					 errhint("The fields of an entity are listed in outreach.entity_field.")));
		}
	}
	f->typid = get_atttype(e->relid, attnum);
	f->kind = kind_of_type(f->typid);
	if (f->kind == FK_TEXT)
		f->allowed = outreach_column_allowed_values(e->relid, attnum);
	return f;
}

/* SQL for the field on a row of the scope */
static char *
field_sql(CompileState *st, Scope *s, FieldInfo *f)
{
	if (f->is_age && f->age_at)
	{
		/* nobody has an age on a date before their birth: NULL, as for a missing birthdate */
		char	   *bd = psprintf("%s.%s", s->alias, quote_identifier("birthdate"));

		return psprintf("CASE WHEN %s " OP("<=") " %s THEN EXTRACT(YEAR FROM pg_catalog.age((%s)::timestamp, %s::timestamp))::integer END",
						bd, f->age_at, f->age_at, bd);
	}
	if (f->is_age)
		return psprintf("EXTRACT(YEAR FROM pg_catalog.age((SELECT (outreach.now() AT TIME ZONE %s)::pg_catalog.date)::timestamp, %s.%s::timestamp))::integer",
						quote_literal_cstr(st->tz), s->alias, quote_identifier("birthdate"));
	return psprintf("%s.%s", s->alias, quote_identifier(f->name));
}

/*
 * How relation r is reached from scope entity s: a one-to-many edge (r.column references
 * s's key) or a many-to-one edge (s.column references r's key).
 */
typedef struct Edge
{
	bool		one_to_many;
	char	   *column;
} Edge;

static Edge
resolve_edge(CompileState *st, EntityInfo *s, EntityInfo *r, QRelation *rel)
{
	List	   *cands = NIL;	/* Edge * */
	List	   *descr = NIL;
	ListCell   *lc;
	Edge	   *found = NULL;
	int			nfound = 0;

	foreach(lc, st->links)
	{
		LinkInfo   *l = lfirst(lc);
		Edge	   *e = NULL;

		if (strcmp(l->entity, r->name) == 0 && strcmp(l->target, s->name) == 0)
		{
			e = palloc0(sizeof(Edge));
			e->one_to_many = true;
			e->column = l->link_column;
			descr = lappend(descr, psprintf("%s.%s -> %s", r->name, l->link_column, s->name));
			cands = lappend(cands, e);
		}
		/* a self link (account.parent_id) is read one way: the rows pointing at the scope row */
		if (strcmp(l->entity, s->name) == 0 && strcmp(l->target, r->name) == 0 &&
			strcmp(s->name, r->name) != 0)
		{
			e = palloc0(sizeof(Edge));
			e->one_to_many = false;
			e->column = l->link_column;
			descr = lappend(descr, psprintf("%s.%s -> %s", s->name, l->link_column, r->name));
			cands = lappend(cands, e);
		}
	}
	if (cands == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("entity \"%s\" is not linked to \"%s\" at character %d", r->name, s->name, POS(rel->location)),
				 errdetail("A relation needs a link between the two entities: a column of one that references the other."),
				 errhint("Links are listed in outreach.entity_overview; add one with outreach.add_entity_link().")));
	foreach(lc, cands)
	{
		Edge	   *e = lfirst(lc);

		if (rel->via != NULL && strcmp(rel->via, e->column) != 0)
			continue;
		found = e;
		nfound++;
	}
	if (nfound == 0)
	{
		List	   *cols = NIL;

		foreach(lc, cands)
			cols = lappend(cols, ((Edge *) lfirst(lc))->column);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("\"%s\" does not link \"%s\" to \"%s\" at character %d", rel->via, r->name, s->name, POS(rel->location)),
				 errdetail("Links between them: %s.", join_names(descr, "")),
				 errhint("Write via %s.", join_names(cols, ""))));
	}
	if (nfound > 1)
	{
		List	   *cols = NIL;

		foreach(lc, cands)
			cols = lappend(cols, ((Edge *) lfirst(lc))->column);
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_COLUMN),
				 errmsg("relation \"%s\" is ambiguous at character %d", r->name, POS(rel->location)),
				 errdetail("\"%s\" and \"%s\" are linked in more than one way: %s.", s->name, r->name, join_names(descr, "")),
				 errhint("Name the link column, e.g. \"%s via %s\".", r->name, (char *) linitial(cols))));
	}
	return *found;
}

/* ---------------------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------------------- */

static const char *
unit_word(QUnit u)
{
	switch (u)
	{
		case QUNIT_MINUTE:
			return "minutes";
		case QUNIT_HOUR:
			return "hours";
		case QUNIT_DAY:
			return "days";
		case QUNIT_WEEK:
			return "weeks";
		case QUNIT_MONTH:
			return "months";
		case QUNIT_YEAR:
			return "years";
	}
	return "days";
}

static char *
interval_sql(int64 amount, QUnit unit)
{
	const char *w = unit_word(unit);

	/* "1 year", "2 years" */
	if (amount == 1)
		return psprintf("'1 %.*s'::interval", (int) strlen(w) - 1, w);
	return psprintf("'" INT64_FORMAT " %s'::interval", amount, w);
}

/*
 * A point in time relative to the clock, as SQL computed once (a scalar subquery).
 * base_today: from today's date in the time zone, else from now.  The result has the type
 * that suits the field: a date for date fields when the offset is whole days, a local
 * timestamp for date and timestamp fields, a timestamptz for timestamptz fields.
 */
/* relative amounts beyond this many units are mistakes, and would overflow an interval */
#define MAX_RELATIVE_AMOUNT 100000

static void
check_amount(int64 amount, int location)
{
	if (amount > MAX_RELATIVE_AMOUNT || amount < -MAX_RELATIVE_AMOUNT)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("amount " INT64_FORMAT " is out of range at character %d", amount, POS(location)),
				 errdetail("Relative dates go back or ahead at most %d units.", MAX_RELATIVE_AMOUNT)));
}

/*
 * The span of time an offset (or the offsets after a contact field, together) may cover:
 * 1000 years.  Beyond it, arithmetic on a date or timestamp could leave their range at
 * run time, and a segment that went live would fail in every writer's statement.
 */
#define MAX_SPAN_DAYS 366000.0

static double
span_days(int64 amount, QUnit unit)
{
	double		a = (double) (amount < 0 ? -amount : amount);

	switch (unit)
	{
		case QUNIT_MINUTE:
			return a / 1440.0;
		case QUNIT_HOUR:
			return a / 24.0;
		case QUNIT_DAY:
			return a;
		case QUNIT_WEEK:
			return a * 7;
		case QUNIT_MONTH:
			return a * 31;
		case QUNIT_YEAR:
			return a * 366;
	}
	return a;
}

static void
check_span(double days, int location)
{
	if (days > MAX_SPAN_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("time span at character %d is longer than 1000 years", POS(location)),
				 errdetail("Relative dates and the steps after a contact field cover at most 1000 years, so that they stay within the range of dates and timestamps."),
				 errhint("Use a smaller amount.")));
}

static char *
relative_sql(CompileState *st, FieldKind fk, bool base_today, int sign, int64 amount, QUnit unit)
{
	const char *tz = quote_literal_cstr(st->tz);
	char	   *local_now = psprintf("(outreach.now() AT TIME ZONE %s)", tz);
	char	   *expr;
	bool		whole_days = (unit != QUNIT_MINUTE && unit != QUNIT_HOUR);

	if (amount < 0)
	{
		amount = -amount;
		sign = -sign;
	}
	/* the current instant needs no time zone arithmetic */
	if (fk == FK_TIMESTAMPTZ && !base_today && (sign == 0 || amount == 0))
		return pstrdup("(SELECT outreach.now())");
	if (base_today)
		expr = psprintf("%s::pg_catalog.date", local_now);
	else
		expr = local_now;
	if (sign != 0 && amount != 0)
		expr = psprintf("%s %s %s", expr, sign > 0 ? OP("+") : OP("-"), interval_sql(amount, unit));
	/* date + interval is a timestamp: back to a date when the offset is whole days */
	if (base_today && sign != 0 && amount != 0 && whole_days)
		expr = psprintf("(%s)::pg_catalog.date", expr);
	if (fk == FK_TIMESTAMPTZ)
	{
		if (base_today && (sign == 0 || amount == 0 || whole_days))
			expr = psprintf("(%s)::timestamp AT TIME ZONE %s", expr, tz);
		else
			expr = psprintf("(%s) AT TIME ZONE %s", expr, tz);
	}
	return psprintf("(SELECT %s)", expr);
}

static bool
is_number_text(const char *s)
{
	const char *p = s;
	bool		digits = false;

	if (s == NULL)
		return false;
	if (*p == '-' || *p == '+')
		p++;
	while (isdigit((unsigned char) *p))
		p++, digits = true;
	if (*p == '.')
	{
		p++;
		while (isdigit((unsigned char) *p))
			p++, digits = true;
	}
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E')
	{
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!isdigit((unsigned char) *p))
			return false;
		while (isdigit((unsigned char) *p))
			p++;
	}
	return *p == '\0';
}

/*
 * Parse a date or timestamp written in the query; re-encode it in ISO so the SQL does not
 * depend on DateStyle.  Returns the SQL literal for a field of kind fk.
 */
static char *
temporal_literal_sql(CompileState *st, FieldKind fk, const char *text, bool want_date, int location,
					 const char *fieldname)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_tm tt,
			   *tm = &tt;
	fsec_t		fsec = 0;
	int			tz = 0;
	bool		has_tz = false;
	int			dterr;
	char		buf[MAXDATELEN + 1];

	dterr = (strlen(text) >= MAXDATELEN) ? DTERR_BAD_FORMAT :
		ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
	if (dterr == 0)
	{
		for (int i = 0; i < nf; i++)
		{
			/* words that mean "the server's clock" would bypass the segment's clock */
			if (ftype[i] == DTK_STRING &&
				(pg_strcasecmp(field[i], "now") == 0 || pg_strcasecmp(field[i], "today") == 0 ||
				 pg_strcasecmp(field[i], "tomorrow") == 0 || pg_strcasecmp(field[i], "yesterday") == 0 ||
				 pg_strcasecmp(field[i], "epoch") == 0 || pg_strcasecmp(field[i], "allballs") == 0 ||
				 pg_strcasecmp(field[i], "infinity") == 0 || pg_strcasecmp(field[i], "-infinity") == 0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
						 errmsg("invalid %s \"%s\" for field \"%s\" at character %d",
								want_date ? "date" : "timestamp", text, fieldname, POS(location)),
						 errdetail("Only calendar dates and times can be written as strings."),
						 errhint("For relative dates write today or now, e.g. today - 1 year.")));
		}
		memset(tm, 0, sizeof(*tm));
		dterr = DecodeDateTime(field, ftype, nf, &dtype, tm, &fsec, NULL);
		if (dterr != 0)
		{
			/* decoding may rewrite the fields: parse again, then accept a time zone */
			memset(tm, 0, sizeof(*tm));
			fsec = 0;
			dterr = ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
			if (dterr == 0)
				dterr = DecodeDateTime(field, ftype, nf, &dtype, tm, &fsec, &tz);
			has_tz = (dterr == 0);
		}
		if (dterr == 0 && has_tz)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("invalid %s \"%s\" for field \"%s\" at character %d",
							want_date ? "date" : "timestamp", text, fieldname, POS(location)),
					 errdetail("A time zone is not allowed."),
					 errhint("Dates and timestamps are read in the segment's time zone; leave out the time zone.")));
		if (dterr == 0 && dtype != DTK_DATE)
			dterr = DTERR_BAD_FORMAT;
		if (dterr == 0 && !IS_VALID_JULIAN(tm->tm_year, tm->tm_mon, tm->tm_mday))
			dterr = DTERR_FIELD_OVERFLOW;
		if (dterr == 0 && want_date && (tm->tm_hour || tm->tm_min || tm->tm_sec || fsec || has_tz))
			dterr = DTERR_BAD_FORMAT;
		/*
		 * Years 1 to 9999 only: arithmetic on a literal (age at, relative steps) then stays
		 * within the range of dates and timestamps at run time.
		 */
		if (dterr == 0 && (tm->tm_year < 1 || tm->tm_year > 9999))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("%s \"%s\" for field \"%s\" is out of range at character %d",
							want_date ? "date" : "timestamp", text, fieldname, POS(location)),
					 errdetail("Dates and timestamps in segment queries lie between the years 1 and 9999.")));
		/* dates are compared with timestamps too: keep both within the timestamp range */
		if (dterr == 0)
		{
			Timestamp	ts;

			if (tm2timestamp(tm, fsec, NULL, &ts) != 0 || !IS_VALID_TIMESTAMP(ts))
				dterr = DTERR_FIELD_OVERFLOW;
		}
	}
	if (dterr != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("invalid %s \"%s\" for field \"%s\" at character %d",
						want_date ? "date" : "timestamp", text, fieldname, POS(location)),
				 want_date ? errhint("Write dates as 'YYYY-MM-DD', e.g. '2024-01-31'.")
				 : errhint("Write timestamps as 'YYYY-MM-DD HH:MM[:SS]', e.g. '2024-01-31 14:30'.")));

	if (want_date)
	{
		EncodeDateOnly(tm, USE_ISO_DATES, buf);
		if (fk == FK_TIMESTAMPTZ)
			return psprintf("(%s::pg_catalog.date::timestamp AT TIME ZONE %s)", quote_literal_cstr(buf), quote_literal_cstr(st->tz));
		return psprintf("%s::pg_catalog.date", quote_literal_cstr(buf));
	}
	EncodeDateTime(tm, fsec, false, 0, NULL, USE_ISO_DATES, buf);
	if (fk == FK_TIMESTAMPTZ)
		return psprintf("(%s::timestamp AT TIME ZONE %s)", quote_literal_cstr(buf), quote_literal_cstr(st->tz));
	return psprintf("%s::timestamp", quote_literal_cstr(buf));
}

static const char *
value_description(const QValue *v)
{
	switch (v->kind)
	{
		case QV_STRING:
			return "a string";
		case QV_NUMBER:
			return "a number";
		case QV_BOOL:
			return "a boolean";
		case QV_DATE:
			return "a date";
		case QV_TIMESTAMP:
			return "a timestamp";
		case QV_TODAY:
			return "today";
		case QV_NOW:
			return "now";
		case QV_CONTACT_FIELD:
			return psprintf("contact.%s", v->text);
	}
	return "a value";
}

static void
value_mismatch(const FieldInfo *f, const QValue *v, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("%s is %s and cannot be compared with %s at character %d",
					f->label ? f->label : psprintf("field \"%s\"", f->name),
					kind_name(f->kind), value_description(v), POS(v->location)),
			 hint ? errhint("%s", hint) : 0));
}

static void
check_allowed(const FieldInfo *f, const QValue *v)
{
	ListCell   *lc;
	const char *near = NULL;

	if (f->allowed == NIL || v->kind != QV_STRING)
		return;
	foreach(lc, f->allowed)
	{
		if (strcmp((char *) lfirst(lc), v->text) == 0)
			return;
		if (pg_strcasecmp((char *) lfirst(lc), v->text) == 0)
			near = lfirst(lc);
	}
	if (near == NULL)
		near = closest_name(v->text, f->allowed);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"%s\" is not an allowed value of field \"%s\" at character %d", v->text, f->name, POS(v->location)),
			 errdetail("Allowed values: %s.", join_names(f->allowed, "'")),
			 near ? errhint("Did you mean '%s'?", near) : 0));
}

static char *field_sql(CompileState *st, Scope *s, FieldInfo *f);

/*
 * contact.field [± N unit] compared with field f of a related row: the field of the query's
 * contact (the outermost one), only inside a relation's filter.  Dates and timestamps move
 * by the offset in the time zone (calendar arithmetic: birthdate + 2 years is the second
 * birthday); other kinds must match f's and take no offset.
 */
static char *
contact_value_sql(CompileState *st, const FieldInfo *f, const QValue *v)
{
	FieldInfo  *cf;
	char	   *expr;
	const char *tz = quote_literal_cstr(st->tz);
	bool		f_temporal = (f->kind == FK_DATE || f->kind == FK_TIMESTAMP || f->kind == FK_TIMESTAMPTZ);
	bool		cf_temporal;

	if (st->relation_depth == 0 || st->contact_scope == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("contact.%s can only be used inside a relation, at character %d", v->text, POS(v->location)),
				 errdetail("contact.field reads the contact a related row belongs to, in the filter of has, count(...), latest(...) and the other aggregates."),
				 errhint("On the contact itself, write the field without \"contact.\".")));
	cf = resolve_field(st, st->contact_scope->entity, v->text, v->location);
	cf_temporal = (cf->kind == FK_DATE || cf->kind == FK_TIMESTAMP || cf->kind == FK_TIMESTAMPTZ);
	if (f_temporal != cf_temporal || (!f_temporal && cf->kind != f->kind) || f->kind == FK_OTHER)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s is %s and cannot be compared with contact.%s, which is %s, at character %d",
						f->label ? f->label : psprintf("field \"%s\"", f->name), kind_name(f->kind),
						v->text, kind_name(cf->kind), POS(v->location))));
	expr = field_sql(st, st->contact_scope, cf);
	if (v->offset_sign != 0)
	{
		if (!cf_temporal)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("contact.%s is %s; only dates and timestamps can be moved by %s N units, at character %d",
							v->text, kind_name(cf->kind), v->offset_sign > 0 ? "+" : "-", POS(v->location))));
		check_amount(v->offset_amount, v->location);
	}
	/*
	 * Each step in turn; a date stays a date while the steps are whole days.  Built in one
	 * pass (the opening parentheses are counted first): copying the expression per step
	 * made memory quadratic in the number of steps.
	 */
	{
		bool		is_date = (cf->kind == FK_DATE);
		ListCell   *lc;
		QOffset		first = {v->offset_sign, v->offset_amount, v->offset_unit};
		List	   *steps = v->offset_sign != 0 ? lcons(&first, list_copy(v->more_offsets)) : NIL;
		StringInfoData tail;
		int			opens = 0;
		StringInfoData whole;
		double		span = 0;

		initStringInfo(&tail);
		foreach(lc, steps)
		{
			const QOffset *o = lfirst(lc);
			bool		whole_days = (o->unit != QUNIT_MINUTE && o->unit != QUNIT_HOUR);
			int64		amount = o->amount;
			int			sign = o->sign;

			check_amount(amount, v->location);
			span += span_days(amount, o->unit);
			check_span(span, v->location);
			if (amount == 0)
				continue;
			if (amount < 0)
				amount = -amount, sign = -sign;
			opens++;
			appendStringInfo(&tail, " %s %s)", sign > 0 ? "OPERATOR(pg_catalog.+)" : "OPERATOR(pg_catalog.-)",
							 interval_sql(amount, o->unit));
			if (is_date && whole_days)
				appendStringInfoString(&tail, "::pg_catalog.date");
			else
				is_date = false;
		}
		initStringInfo(&whole);
		for (int i = 0; i < opens; i++)
			appendStringInfoChar(&whole, '(');
		/* work in local time of the time zone */
		if (cf->kind == FK_TIMESTAMPTZ)
			appendStringInfo(&whole, "pg_catalog.timezone(%s, %s)", tz, expr);
		else
			appendStringInfoString(&whole, expr);
		appendStringInfoString(&whole, tail.data);
		expr = whole.data;
	}
	if (f->kind == FK_TIMESTAMPTZ && cf_temporal)
		expr = psprintf("pg_catalog.timezone(%s, %s::pg_catalog.timestamp)", tz, expr);
	return expr;
}

/* SQL for a value compared with field f; validates that the two fit together. */
static char *
value_sql(CompileState *st, const FieldInfo *f, const QValue *v)
{
	if (v->kind == QV_CONTACT_FIELD)
		return contact_value_sql(st, f, v);
	switch (f->kind)
	{
		case FK_TEXT:
			if (v->kind != QV_STRING)
				value_mismatch(f, v, v->kind == QV_NUMBER ? "Write text values in single quotes, e.g. '42'." : NULL);
			return quote_literal_cstr(v->text);
		case FK_NUMBER:
			if (v->kind != QV_NUMBER)
				value_mismatch(f, v, v->kind == QV_STRING ? "Write numbers without quotes, e.g. 42." : NULL);
			if (!is_number_text(v->text))
				elog(ERROR, "malformed number \"%s\" in segment query", v->text);
			return v->text[0] == '-' ? psprintf("(%s)", v->text) : pstrdup(v->text);
		case FK_BOOL:
			if (v->kind != QV_BOOL)
				value_mismatch(f, v, "Write true or false without quotes.");
			return pstrdup(v->boolval ? "true" : "false");
		case FK_DATE:
		case FK_TIMESTAMP:
		case FK_TIMESTAMPTZ:
			switch (v->kind)
			{
				case QV_STRING:
					return temporal_literal_sql(st, f->kind, v->text, f->kind == FK_DATE, v->location, f->name);
				case QV_DATE:
					return temporal_literal_sql(st, f->kind, v->text, true, v->location, f->name);
				case QV_TIMESTAMP:
					return temporal_literal_sql(st, f->kind, v->text, false, v->location, f->name);
				case QV_TODAY:
					check_amount(v->offset_amount, v->location);
					check_span(span_days(v->offset_amount, v->offset_unit), v->location);
					return relative_sql(st, f->kind, true, v->offset_sign, v->offset_amount, v->offset_unit);
				case QV_NOW:
					check_amount(v->offset_amount, v->location);
					check_span(span_days(v->offset_amount, v->offset_unit), v->location);
					return relative_sql(st, f->kind, false, v->offset_sign, v->offset_amount, v->offset_unit);
				default:
					value_mismatch(f, v, "Write dates as date 'YYYY-MM-DD', or relative to today or now.");
			}
			break;
		case FK_OTHER:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("field \"%s\" of type %s can only be tested with is empty at character %d",
							f->name, format_type_be(f->typid), POS(v->location))));
	}
	return NULL;				/* keep compiler quiet */
}

static const char *
cmp_sql(QCmpOp op)
{
	switch (op)
	{
		case QCMP_EQ:
			return OP("=");
		case QCMP_NE:
			return OP("<>");
		case QCMP_LT:
			return OP("<");
		case QCMP_LE:
			return OP("<=");
		case QCMP_GT:
			return OP(">");
		case QCMP_GE:
			return OP(">=");
	}
	return OP("=");
}

static bool
cmp_holds(double a, QCmpOp op, double b)
{
	switch (op)
	{
		case QCMP_EQ:
			return a == b;
		case QCMP_NE:
			return a != b;
		case QCMP_LT:
			return a < b;
		case QCMP_LE:
			return a <= b;
		case QCMP_GT:
			return a > b;
		case QCMP_GE:
			return a >= b;
	}
	return false;
}

static void
check_ordering(const FieldInfo *f, QCmpOp op, int location)
{
	if (op == QCMP_EQ || op == QCMP_NE)
		return;
	if (f->kind == FK_BOOL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("field \"%s\" is a boolean and can only be compared with = or != at character %d",
						f->name, POS(location))));
}

/* LIKE pattern matching s literally: \, % and _ escaped with the default escape \ */
static char *
literal_like_pattern(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const char *p = s; *p; p++)
	{
		if (*p == '\\' || *p == '%' || *p == '_')
			appendStringInfoChar(&buf, '\\');
		appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

/* ---------------------------------------------------------------------------------------
 * Conditions
 * ------------------------------------------------------------------------------------- */

static void compile_cond(CompileState *st, StringInfo out, const QueryNode *n, Scope *s, int ind);
static void compile_fails(CompileState *st, StringInfo out, const QueryNode *n, Scope *s, int ind);
static void compile_query(CompileState *st, StringInfo out, const QueryNode *n, int ind);

static void
newline(StringInfo out, int ind)
{
	appendStringInfoChar(out, '\n');
	appendStringInfoSpaces(out, ind * 2);
}

static Scope *
new_scope(CompileState *st, EntityInfo *e, char prefix)
{
	Scope	   *s = palloc0(sizeof(Scope));

	s->entity = e;
	snprintf(s->alias, sizeof(s->alias), "%c%d", prefix, st->next_alias++);
	return s;
}

/* links always target a key (register_entity checks it), so a missing one is a bug */
static void
require_key(EntityInfo *e, int location)
{
	if (e->key_column == NULL)
		elog(ERROR, "entity \"%s\" has no key column but is the target of a link", e->name);
}

/* "outer = inner" column pair of an edge between scope s and the related rows r */
static void
edge_columns(Scope *s, Scope *r, Edge *edge, char **outer, char **inner, int location)
{
	if (edge->one_to_many)
	{
		require_key(s->entity, location);
		*outer = psprintf("%s.%s", s->alias, quote_identifier(s->entity->key_column));
		*inner = psprintf("%s.%s", r->alias, quote_identifier(edge->column));
	}
	else
	{
		require_key(r->entity, location);
		*outer = psprintf("%s.%s", s->alias, quote_identifier(edge->column));
		*inner = psprintf("%s.%s", r->alias, quote_identifier(r->entity->key_column));
	}
}

/*
 * A filter on a new line as "AND cond": the conjuncts of an AND line up under the first,
 * an OR is parenthesized.
 */
static void
append_and_cond(CompileState *st, StringInfo out, const QueryNode *filter, Scope *r, int ind)
{
	newline(out, ind);
	appendStringInfoString(out, "AND ");
	if (filter->type == QN_AND)
		compile_cond(st, out, filter, r, ind);
	else if (filter->type == QN_OR)
	{
		appendStringInfoChar(out, '(');
		compile_cond(st, out, filter, r, ind + 1);
		appendStringInfoChar(out, ')');
	}
	else
		compile_cond(st, out, filter, r, ind + 1);
}

/* the filter of a relation's rows, if any, under its WHERE at indentation ind */
static void
append_filter(CompileState *st, StringInfo out, const QueryNode *filter, Scope *r, int ind)
{
	if (filter != NULL)
		append_and_cond(st, out, filter, r, ind + 1);
}

static void
compile_has(CompileState *st, StringInfo out, const QueryNode *n, Scope *s, int ind)
{
	EntityInfo *re = require_entity(st, n->relation->entity, n->relation->location);
	Edge		edge = resolve_edge(st, s->entity, re, n->relation);
	Scope	   *r = new_scope(st, re, 'r');
	char	   *outer,
			   *inner;

	edge_columns(s, r, &edge, &outer, &inner, n->relation->location);
	appendStringInfo(out, "%sEXISTS (", n->negated ? "NOT " : "");
	newline(out, ind + 1);
	appendStringInfoString(out, "SELECT 1");
	newline(out, ind + 1);
	appendStringInfo(out, "FROM %s AS %s", re->qualname, r->alias);
	newline(out, ind + 1);
	appendStringInfo(out, "WHERE %s " OP("=") " %s", inner, outer);
	st->relation_depth++;
	append_filter(st, out, n->filter, r, ind + 1);
	st->relation_depth--;
	newline(out, ind);
	appendStringInfoChar(out, ')');
}

/*
 * "has R where f1 or has R where f2" (the same relation, by the same link, neither negated):
 * one EXISTS with the filters OR'ed, which the planner runs as one semi-join; separate
 * EXISTS under OR become a hashed subplan each, probed for every row in scope.
 */
static bool
same_has(const QueryNode *a, const QueryNode *b)
{
	if (a->type != QN_HAS || b->type != QN_HAS || a->negated || b->negated)
		return false;
	if (strcmp(a->relation->entity, b->relation->entity) != 0)
		return false;
	if (a->relation->via == NULL || b->relation->via == NULL)
		return a->relation->via == b->relation->via;
	return strcmp(a->relation->via, b->relation->via) == 0;
}

static void
compile_has_any(CompileState *st, StringInfo out, List *hs, Scope *s, int ind)
{
	const QueryNode *n = linitial(hs);
	EntityInfo *re = require_entity(st, n->relation->entity, n->relation->location);
	Edge		edge = resolve_edge(st, s->entity, re, n->relation);
	Scope	   *r = new_scope(st, re, 'r');
	char	   *outer,
			   *inner;
	bool		unfiltered = false;
	ListCell   *lc;
	bool		first = true;

	edge_columns(s, r, &edge, &outer, &inner, n->relation->location);
	foreach(lc, hs)
		if (((const QueryNode *) lfirst(lc))->filter == NULL)
			unfiltered = true;
	appendStringInfoString(out, "EXISTS (");
	newline(out, ind + 1);
	appendStringInfoString(out, "SELECT 1");
	newline(out, ind + 1);
	appendStringInfo(out, "FROM %s AS %s", re->qualname, r->alias);
	newline(out, ind + 1);
	appendStringInfo(out, "WHERE %s " OP("=") " %s", inner, outer);
	st->relation_depth++;
	if (!unfiltered)
	{
		newline(out, ind + 2);
		appendStringInfoString(out, "AND (");
		foreach(lc, hs)
		{
			const QueryNode *h = lfirst(lc);

			if (!first)
			{
				newline(out, ind + 3);
				appendStringInfoString(out, "OR ");
			}
			first = false;
			appendStringInfoChar(out, '(');
			compile_cond(st, out, h->filter, r, ind + 4);
			appendStringInfoChar(out, ')');
		}
		appendStringInfoChar(out, ')');
	}
	st->relation_depth--;
	newline(out, ind);
	appendStringInfoChar(out, ')');
}

/* does a condition (or a value in it) read contact.field? */
static bool
value_refers_to_contact(const QValue *v)
{
	return v != NULL && v->kind == QV_CONTACT_FIELD;
}

static bool
refers_to_contact(const QueryNode *n)
{
	ListCell   *lc;

	if (n == NULL)
		return false;
	check_stack_depth();
	if (value_refers_to_contact(n->value) || value_refers_to_contact(n->value2) ||
		value_refers_to_contact(n->age_at))
		return true;
	foreach(lc, n->values)
		if (value_refers_to_contact(lfirst(lc)))
			return true;
	foreach(lc, n->args)
		if (refers_to_contact(lfirst(lc)))
			return true;
	return refers_to_contact(n->arg) || refers_to_contact(n->filter) ||
		refers_to_contact(n->left) || refers_to_contact(n->right);
}

/*
 * How an aggregate or latest over the rows of a relation is evaluated for the whole
 * population: grouped by link (set-based) unless its filter reads contact.field; then, when
 * the rows link to the query's contact directly, the contact is joined to the grouped rows
 * (still set-based), otherwise the subquery is correlated with the row in scope.
 */
typedef enum GroupedForm
{
	GF_GROUPED, GF_GROUPED_JOIN_CONTACT, GF_CORRELATED
} GroupedForm;

static GroupedForm
grouped_form(CompileState *st, const QueryNode *n, Scope *s, Edge *edge)
{
	if (st->opts->restricted)
		return GF_CORRELATED;
	if (!refers_to_contact(n->filter))
		return GF_GROUPED;
	if (s->top && edge->one_to_many)
		return GF_GROUPED_JOIN_CONTACT;
	return GF_CORRELATED;
}

/* "FROM relation AS r", joined to its contact for GF_GROUPED_JOIN_CONTACT; returns the contact scope to restore */
static Scope *
append_grouped_from(CompileState *st, StringInfo out, EntityInfo *re, Scope *r, Scope *s, const char *inner,
					GroupedForm form, int ind)
{
	Scope	   *saved = st->contact_scope;
	Scope	   *cj;

	appendStringInfo(out, "FROM %s AS %s", re->qualname, r->alias);
	if (form != GF_GROUPED_JOIN_CONTACT)
		return saved;
	cj = new_scope(st, s->entity, 'c');
	newline(out, ind);
	appendStringInfo(out, "JOIN %s AS %s ON %s.%s " OP("=") " %s", s->entity->qualname, cj->alias, cj->alias,
					 quote_identifier(s->entity->key_column), inner);
	st->contact_scope = cj;
	return saved;
}

/* the aggregate's SQL function, qualified */
static const char *
agg_sql(QAggFunc a)
{
	switch (a)
	{
		case QAGG_COUNT:
			return "pg_catalog.count";
		case QAGG_MIN:
			return "pg_catalog.min";
		case QAGG_MAX:
			return "pg_catalog.max";
		case QAGG_SUM:
			return "pg_catalog.sum";
		case QAGG_AVG:
			return "pg_catalog.avg";
	}
	return "pg_catalog.count";
}

static const char *
agg_name(QAggFunc a)
{
	switch (a)
	{
		case QAGG_COUNT:
			return "count";
		case QAGG_MIN:
			return "min";
		case QAGG_MAX:
			return "max";
		case QAGG_SUM:
			return "sum";
		case QAGG_AVG:
			return "avg";
	}
	return "count";
}

/*
 * agg(relation[.field] [where filter]) cmp value.
 * Whole population: scope rows whose link is among the groups satisfying the comparison
 * (semi-join on a grouped subquery); when the comparison also holds for no rows at all
 * (count < 2, count = 0), scope rows for which no group violates it (anti-join).
 * Restricted: a correlated scalar subquery per scope row.
 */
static void
compile_agg(CompileState *st, StringInfo out, const QueryNode *n, Scope *s, int ind, bool neg)
{
	EntityInfo *re = require_entity(st, n->relation->entity, n->relation->location);
	Edge		edge = resolve_edge(st, s->entity, re, n->relation);
	Scope	   *r = new_scope(st, re, 'r');
	char	   *outer,
			   *inner;
	char	   *aggexpr;
	char	   *valsql;
	FieldInfo  *f = NULL;
	bool		zero_true = false;
	GroupedForm form;
	Scope	   *saved;

	edge_columns(s, r, &edge, &outer, &inner, n->relation->location);

	if (n->field)
		f = resolve_field(st, re, n->field, n->field_location);
	if (n->agg == QAGG_COUNT)
	{
		FieldInfo	countf = {"count", FK_NUMBER, INT8OID, false, "count(...)", NIL};

		valsql = value_sql(st, &countf, n->value);
		zero_true = cmp_holds(0.0, n->cmp, strtod(n->value->text, NULL));
		if (n->distinct && f == NULL)
			elog(ERROR, "count(distinct ...) without a field in segment query");
		if (n->distinct_day)
		{
			/* the calendar day of a date or timestamp in the query's time zone */
			char	   *fs = field_sql(st, r, f);

			if (f->kind == FK_DATE)
				aggexpr = psprintf("pg_catalog.count(DISTINCT %s)", fs);
			else if (f->kind == FK_TIMESTAMP)
				aggexpr = psprintf("pg_catalog.count(DISTINCT %s::pg_catalog.date)", fs);
			else if (f->kind == FK_TIMESTAMPTZ)
				aggexpr = psprintf("pg_catalog.count(DISTINCT (%s AT TIME ZONE %s)::pg_catalog.date)", fs, quote_literal_cstr(st->tz));
			else
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("count(distinct day of ...) needs a date or timestamp, but \"%s\" is %s at character %d",
								f->name, kind_name(f->kind), POS(n->field_location)),
						 errhint("Write count(distinct %s.%s) to count distinct values.", re->name, f->name)));
		}
		else
			aggexpr = f ? psprintf("pg_catalog.count(%s%s)", n->distinct ? "DISTINCT " : "", field_sql(st, r, f)) : pstrdup("pg_catalog.count(*)");
	}
	else
	{
		if (f == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s needs a field at character %d", agg_name(n->agg), POS(n->location)),
					 errhint("Write %s(%s.field ...).", agg_name(n->agg), re->name)));
		if ((n->agg == QAGG_SUM || n->agg == QAGG_AVG) && f->kind != FK_NUMBER)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("%s needs a numeric field, but \"%s\" is %s at character %d",
							agg_name(n->agg), f->name, kind_name(f->kind), POS(n->field_location))));
		if (f->kind == FK_BOOL || f->kind == FK_OTHER)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("%s cannot be applied to field \"%s\" of type %s at character %d",
							agg_name(n->agg), f->name, format_type_be(f->typid), POS(n->field_location))));
		if (f->kind == FK_TEXT)
		{
			/* min/max of text compare strings; the allowed-values check does not apply */
			FieldInfo	plain = *f;

			plain.allowed = NIL;
			valsql = value_sql(st, &plain, n->value);
		}
		else
		{
			FieldInfo	numf = *f;

			/* avg of an integer column is fractional; compare as numbers */
			valsql = value_sql(st, &numf, n->value);
		}
		aggexpr = psprintf("%s(%s)", agg_sql(n->agg), field_sql(st, r, f));
	}

	form = grouped_form(st, n, s, &edge);
	st->relation_depth++;
	if (form == GF_CORRELATED)
	{
		/* the scalar is NULL for min/max/sum/avg of no values: unknown, neither true nor false */
		appendStringInfoString(out, neg ? "((" : "(");
		newline(out, ind + 1);
		appendStringInfo(out, "SELECT %s", aggexpr);
		newline(out, ind + 1);
		appendStringInfo(out, "FROM %s AS %s", re->qualname, r->alias);
		newline(out, ind + 1);
		appendStringInfo(out, "WHERE %s " OP("=") " %s", inner, outer);
		append_filter(st, out, n->filter, r, ind + 1);
		st->relation_depth--;
		newline(out, ind);
		appendStringInfo(out, ") %s %s%s", cmp_sql(n->cmp), valsql, neg ? ") IS FALSE" : "");
		return;
	}

	/*
	 * Grouped: a contact's groups are its related rows (none: no group).  The comparison is
	 * false for a count of 0 when !zero_true and for any group whose aggregate fails it; it
	 * is unknown for min/max/sum/avg without a group or of NULL values only.  So:
	 *   holds:  count: in (groups where it holds), or zero_true: not exists (groups where it fails)
	 *           other: in (groups where it holds)
	 *   fails:  count: not exists (groups where it holds), or zero_true: in (groups where it fails)
	 *           other: in (groups where it IS FALSE)
	 */
	if (neg && n->agg != QAGG_COUNT)
	{
		appendStringInfo(out, "%s " OP("=") " ANY (", outer);
		newline(out, ind + 1);
		appendStringInfo(out, "SELECT %s", inner);
		newline(out, ind + 1);
		saved = append_grouped_from(st, out, re, r, s, inner, form, ind + 1);
		newline(out, ind + 1);
		appendStringInfo(out, "WHERE %s IS NOT NULL", inner);
		append_filter(st, out, n->filter, r, ind + 1);
		st->contact_scope = saved;
		newline(out, ind + 1);
		appendStringInfo(out, "GROUP BY %s", inner);
		newline(out, ind + 1);
		appendStringInfo(out, "HAVING (%s %s %s) IS FALSE", aggexpr, cmp_sql(n->cmp), valsql);
		newline(out, ind);
		appendStringInfoChar(out, ')');
		st->relation_depth--;
		return;
	}
	if (zero_true == neg)
	{
		appendStringInfo(out, "%s " OP("=") " ANY (", outer);
		newline(out, ind + 1);
		appendStringInfo(out, "SELECT %s", inner);
		newline(out, ind + 1);
		saved = append_grouped_from(st, out, re, r, s, inner, form, ind + 1);
		newline(out, ind + 1);
		appendStringInfo(out, "WHERE %s IS NOT NULL", inner);
		append_filter(st, out, n->filter, r, ind + 1);
		st->contact_scope = saved;
		newline(out, ind + 1);
		appendStringInfo(out, "GROUP BY %s", inner);
		newline(out, ind + 1);
		if (neg)
			appendStringInfo(out, "HAVING NOT (%s %s %s)", aggexpr, cmp_sql(n->cmp), valsql);
		else
			appendStringInfo(out, "HAVING %s %s %s", aggexpr, cmp_sql(n->cmp), valsql);
		newline(out, ind);
		appendStringInfoChar(out, ')');
	}
	else
	{
		char		galias[16];

		snprintf(galias, sizeof(galias), "g%d", st->next_alias++);
		appendStringInfoString(out, "NOT EXISTS (");
		newline(out, ind + 1);
		appendStringInfoString(out, "SELECT 1");
		newline(out, ind + 1);
		appendStringInfoString(out, "FROM (");
		newline(out, ind + 2);
		appendStringInfo(out, "SELECT %s AS link", inner);
		newline(out, ind + 2);
		saved = append_grouped_from(st, out, re, r, s, inner, form, ind + 2);
		newline(out, ind + 2);
		appendStringInfo(out, "WHERE %s IS NOT NULL", inner);
		append_filter(st, out, n->filter, r, ind + 2);
		st->contact_scope = saved;
		newline(out, ind + 2);
		appendStringInfo(out, "GROUP BY %s", inner);
		newline(out, ind + 2);
		if (neg)
			appendStringInfo(out, "HAVING %s %s %s", aggexpr, cmp_sql(n->cmp), valsql);
		else
			appendStringInfo(out, "HAVING NOT (%s %s %s)", aggexpr, cmp_sql(n->cmp), valsql);
		newline(out, ind + 1);
		appendStringInfo(out, ") AS %s", galias);
		newline(out, ind + 1);
		appendStringInfo(out, "WHERE %s.link " OP("=") " %s", galias, outer);
		newline(out, ind);
		appendStringInfoChar(out, ')');
	}
	st->relation_depth--;
}

/*
 * latest(relation.field [where filter]) cmp value: the field on the newest row by the
 * entity's time column (rows without a time come last; ties broken by key, newest first).
 */
static void
compile_latest(CompileState *st, StringInfo out, const QueryNode *n, Scope *s, int ind, bool neg)
{
	EntityInfo *re = require_entity(st, n->relation->entity, n->relation->location);
	Edge		edge;
	Scope	   *r;
	char	   *outer,
			   *inner;
	FieldInfo  *f;
	char	   *valsql;
	StringInfoData order;
	GroupedForm form;
	Scope	   *saved;

	if (re->time_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("entity \"%s\" has no time column, so latest(...) cannot order its rows at character %d",
						re->name, POS(n->relation->location)),
				 errhint("Register the entity with time_column => '...' to use latest.")));
	edge = resolve_edge(st, s->entity, re, n->relation);
	r = new_scope(st, re, 'r');
	edge_columns(s, r, &edge, &outer, &inner, n->relation->location);
	if (n->field == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("latest needs a field at character %d", POS(n->location)),
				 errhint("Write latest(%s.field ...).", re->name)));
	f = resolve_field(st, re, n->field, n->field_location);
	if (n->empty_test)
	{
		/* "is [not] empty" as on a field: NULL, or '' for text; applied to lN.value below */
		if (f->kind == FK_TEXT)
			valsql = pstrdup(n->negated ? "(%1$s IS NOT NULL AND %1$s " OP("<>") " '')" : "(%1$s IS NULL OR %1$s " OP("=") " '')");
		else
			valsql = pstrdup(n->negated ? "%1$s IS NOT NULL" : "%1$s IS NULL");
	}
	else
	{
		check_ordering(f, n->cmp, n->value->location);
		if (n->cmp == QCMP_EQ || n->cmp == QCMP_NE)
			check_allowed(f, n->value);
		valsql = value_sql(st, f, n->value);
	}

	initStringInfo(&order);
	appendStringInfo(&order, "%s.%s DESC NULLS LAST", r->alias, quote_identifier(re->time_column));
	if (re->key_column)
		appendStringInfo(&order, ", %s.%s DESC", r->alias, quote_identifier(re->key_column));

	form = grouped_form(st, n, s, &edge);
	st->relation_depth++;
	if (form == GF_CORRELATED && n->empty_test)
	{
		/* the newest row exists and its value is (not) empty: no rows is neither */
		char		lalias[16];

		snprintf(lalias, sizeof(lalias), "l%d", st->next_alias++);
		appendStringInfoString(out, neg ? "NOT EXISTS (" : "EXISTS (");
		newline(out, ind + 1);
		appendStringInfoString(out, "SELECT 1");
		newline(out, ind + 1);
		appendStringInfoString(out, "FROM (");
		newline(out, ind + 2);
		appendStringInfo(out, "SELECT %s AS value", field_sql(st, r, f));
		newline(out, ind + 2);
		appendStringInfo(out, "FROM %s AS %s", re->qualname, r->alias);
		newline(out, ind + 2);
		appendStringInfo(out, "WHERE %s " OP("=") " %s", inner, outer);
		append_filter(st, out, n->filter, r, ind + 2);
		st->relation_depth--;
		newline(out, ind + 2);
		appendStringInfo(out, "ORDER BY %s", order.data);
		newline(out, ind + 2);
		appendStringInfoString(out, "LIMIT 1");
		newline(out, ind + 1);
		appendStringInfo(out, ") AS %s", lalias);
		newline(out, ind + 1);
		appendStringInfoString(out, "WHERE ");
		appendStringInfo(out, valsql, psprintf("%s.value", lalias));
		newline(out, ind);
		appendStringInfoChar(out, ')');
		return;
	}
	if (form == GF_CORRELATED)
	{
		/* NULL without a row or for a NULL value: unknown, neither true nor false */
		appendStringInfoString(out, neg ? "((" : "(");
		newline(out, ind + 1);
		appendStringInfo(out, "SELECT %s", field_sql(st, r, f));
		newline(out, ind + 1);
		appendStringInfo(out, "FROM %s AS %s", re->qualname, r->alias);
		newline(out, ind + 1);
		appendStringInfo(out, "WHERE %s " OP("=") " %s", inner, outer);
		append_filter(st, out, n->filter, r, ind + 1);
		st->relation_depth--;
		newline(out, ind + 1);
		appendStringInfo(out, "ORDER BY %s", order.data);
		newline(out, ind + 1);
		appendStringInfoString(out, "LIMIT 1");
		newline(out, ind);
		appendStringInfo(out, ") %s %s%s", cmp_sql(n->cmp), valsql, neg ? ") IS FALSE" : "");
		return;
	}
	{
		char		lalias[16];
		/* is empty is two-valued (no newest row: false), so "fails" is "not exists" */
		bool		anti = neg && n->empty_test;

		snprintf(lalias, sizeof(lalias), "l%d", st->next_alias++);
		if (anti)
		{
			appendStringInfoString(out, "NOT EXISTS (");
			newline(out, ind + 1);
			appendStringInfoString(out, "SELECT 1");
		}
		else
		{
			appendStringInfo(out, "%s " OP("=") " ANY (", outer);
			newline(out, ind + 1);
			appendStringInfo(out, "SELECT %s.link", lalias);
		}
		newline(out, ind + 1);
		appendStringInfoString(out, "FROM (");
		newline(out, ind + 2);
		appendStringInfo(out, "SELECT DISTINCT ON (%s) %s AS link, %s AS value", inner, inner, field_sql(st, r, f));
		newline(out, ind + 2);
		saved = append_grouped_from(st, out, re, r, s, inner, form, ind + 2);
		newline(out, ind + 2);
		appendStringInfo(out, "WHERE %s IS NOT NULL", inner);
		append_filter(st, out, n->filter, r, ind + 2);
		st->contact_scope = saved;
		st->relation_depth--;
		newline(out, ind + 2);
		appendStringInfo(out, "ORDER BY %s, %s", inner, order.data);
		newline(out, ind + 1);
		appendStringInfo(out, ") AS %s", lalias);
		newline(out, ind + 1);
		if (anti)
			appendStringInfo(out, "WHERE %s.link " OP("=") " %s AND ", lalias, outer);
		else
			appendStringInfoString(out, "WHERE ");
		if (n->empty_test)
			appendStringInfo(out, valsql, psprintf("%s.value", lalias));
		else if (neg)
			appendStringInfo(out, "(%s.value %s %s) IS FALSE", lalias, cmp_sql(n->cmp), valsql);
		else
			appendStringInfo(out, "%s.value %s %s", lalias, cmp_sql(n->cmp), valsql);
		newline(out, ind);
		appendStringInfoChar(out, ')');
	}
}

/* ---------------------------------------------------------------------------------------
 * Segments
 * ------------------------------------------------------------------------------------- */

typedef struct SegmentInfo
{
	int64		id;
	char	   *name;
	char	   *status;
	char	   *definition;		/* NULL for static segments */
} SegmentInfo;

static SegmentInfo *
lookup_segment(const char *name, List **all_names)
{
	MemoryContext outer = spi_connect_checked();
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			ret;
	SegmentInfo *seg = NULL;

	args[0] = CStringGetTextDatum(name);
	ret = SPI_execute_with_args("SELECT id, name, status, definition::text FROM outreach.segment WHERE name = $1",
								1, argtypes, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading outreach.segment failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(outer);
		char	   *idtxt = SPI_getvalue(tup, desc, 1);

		seg = palloc0(sizeof(SegmentInfo));
		seg->id = strtoi64(idtxt, NULL, 10);
		seg->name = SPI_getvalue(tup, desc, 2);
		seg->status = SPI_getvalue(tup, desc, 3);
		seg->definition = SPI_getvalue(tup, desc, 4);
		MemoryContextSwitchTo(old);
	}
	else if (all_names)
	{
		ret = SPI_execute("SELECT name FROM outreach.segment ORDER BY name", true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "reading outreach.segment failed: %s", SPI_result_code_string(ret));
		for (uint64 i = 0; i < SPI_processed; i++)
			*all_names = lappend(*all_names, copy_value(outer, SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	}
	SPI_finish();
	return seg;
}

static void collect_segment_refs(const QueryNode *n, List **names, List **locations);

/*
 * Does segment `name` (through its definition and the definitions it refers to) refer to
 * the segment being compiled?  path holds the chain for the message; done, the segments
 * already explored without reaching it (so shared references are read once).
 */
static bool
refers_to(const char *target, const char *name, List *path, List **chain, List **done)
{
	SegmentInfo *seg;
	QueryNode  *q;
	List	   *names = NIL;
	List	   *locs = NIL;
	ListCell   *lc;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	if (strcmp(name, target) == 0)
	{
		*chain = lappend(list_copy(path), (char *) name);
		return true;
	}
	foreach(lc, path)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return false;		/* a cycle not through target: stop */
	foreach(lc, *done)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return false;
	seg = lookup_segment(name, NULL);
	if (seg == NULL || seg->definition == NULL)
		return false;
	q = segment_query_parse(seg->definition);
	collect_segment_refs(q, &names, &locs);
	path = lappend(list_copy(path), (char *) name);
	foreach(lc, names)
		if (refers_to(target, (char *) lfirst(lc), path, chain, done))
			return true;
	*done = lappend(*done, pstrdup(name));
	return false;
}

/* the live segment name refers to, after every check */
static SegmentInfo *
require_segment(CompileState *st, const char *name, int location)
{
	SegmentInfo *seg;
	List	   *all = NIL;
	List	   *chain = NIL;
	List	   *done = NIL;

	if (st->opts->segment_name != NULL && strcmp(name, st->opts->segment_name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_RECURSION),
				 errmsg("segment \"%s\" cannot refer to itself at character %d", name, POS(location))));
	seg = lookup_segment(name, &all);
	if (seg == NULL)
	{
		const char *near = closest_name(name, all);

		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment \"%s\" does not exist at character %d", name, POS(location)),
				 near ? errhint("Did you mean '%s'?", near) :
				 errhint("Segments are listed in outreach.segment.")));
	}
	if (st->opts->segment_name != NULL &&
		refers_to(st->opts->segment_name, name, NIL, &chain, &done))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_RECURSION),
				 errmsg("segment \"%s\" would refer to itself through \"%s\" at character %d",
						st->opts->segment_name, name, POS(location)),
				 errdetail("Chain of references: %s -> %s.", st->opts->segment_name, join_with(chain, "", " -> "))));
	if (strcmp(seg->status, "live") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("segment \"%s\" is not live at character %d", name, POS(location)),
				 errdetail("Segment \"%s\" is %s; only live segments have members.", name, seg->status),
				 errhint("Make it live first: SELECT outreach.go_live(%s);", quote_literal_cstr(name))));
	return seg;
}

/* ---------------------------------------------------------------------------------------
 * age as a range of birthdates
 *
 * age >= n exactly when birthdate <= today - n years (PostgreSQL clamps 29 February to the
 * 28th, which is what age() counts), for every birthdate up to today.  Comparisons of age
 * with whole numbers therefore compile to birthdate ranges computed once, which an index
 * on birthdate can serve; other forms compute age() per row.
 * ------------------------------------------------------------------------------------- */

#define MAX_AGE_YEARS 1000

static bool
whole_years(const QValue *v, int64 *n)
{
	const char *p;

	if (v->kind != QV_NUMBER || v->text == NULL)
		return false;
	p = v->text[0] == '-' ? v->text + 1 : v->text;
	if (*p == '\0' || strlen(p) > 4)
		return false;
	for (const char *q = p; *q; q++)
		if (!isdigit((unsigned char) *q))
			return false;
	*n = strtol(v->text, NULL, 10);
	return *n >= -MAX_AGE_YEARS && *n <= MAX_AGE_YEARS;
}

/* SQL for the latest birthdate of someone aged at least n: today (or the "at" date) - n years */
static char *
age_bound(CompileState *st, const FieldInfo *f, int64 n)
{
	if (f->age_at == NULL)
		return relative_sql(st, FK_DATE, true, -1, n, QUNIT_YEAR);
	if (n == 0)
		return pstrdup(f->age_at);
	return psprintf("(SELECT (%s %s %s)::pg_catalog.date)", f->age_at, n > 0 ? OP("-") : OP("+"), interval_sql(n > 0 ? n : -n, QUNIT_YEAR));
}

/*
 * "age at D": a range of birthdates that does not itself exclude people born after D gets
 * "birthdate <= D" too, since they have no age at D (lowest: the smallest age the range
 * accepts, or a negative number when it has no lower bound).
 */
static void
append_age_range(StringInfo out, const FieldInfo *f, const char *bd, int64 lowest, const char *range)
{
	if (f->age_at != NULL && lowest < 0)
		appendStringInfo(out, "(%s AND %s " OP("<=") " %s)", range, bd, f->age_at);
	else
		appendStringInfoString(out, range);
}

/*
 * SQL for the date of "age at <value>": a date written as date '...' or '...', or today
 * with an offset in days, weeks, months or years.  Age counts whole years to a date, so a
 * timestamp, now or an offset in hours or minutes is refused.
 */
static char *
age_at_sql(CompileState *st, const QValue *v)
{
	FieldInfo	datef;

	if (v->kind == QV_TODAY && v->offset_sign != 0 &&
		(v->offset_unit == QUNIT_MINUTE || v->offset_unit == QUNIT_HOUR))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("\"age at\" takes a date; today moved by %s is a time of day at character %d",
						v->offset_unit == QUNIT_MINUTE ? "minutes" : "hours", POS(v->location)),
				 errhint("Move today by days, weeks, months or years, e.g. age at today + 1 year.")));
	if (v->kind != QV_DATE && v->kind != QV_STRING && v->kind != QV_TODAY)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("\"age at\" takes a date, not %s, at character %d", value_description(v), POS(v->location)),
				 errdetail("Age counts whole years up to a calendar date."),
				 errhint("Write age at date '2024-12-31' or age at today + 1 year.")));
	memset(&datef, 0, sizeof(datef));
	datef.name = "age";
	datef.kind = FK_DATE;
	datef.typid = DATEOID;
	return value_sql(st, &datef, v);
}

static bool
compile_age_cmp(CompileState *st, StringInfo out, Scope *s, const QueryNode *n, const FieldInfo *f)
{
	int64		v;
	char	   *bd = psprintf("%s.%s", s->alias, quote_identifier("birthdate"));

	if (!whole_years(n->value, &v))
		return false;
	switch (n->cmp)
	{
		case QCMP_GE:
			append_age_range(out, f, bd, v, psprintf("%s " OP("<=") " %s", bd, age_bound(st, f, v)));
			break;
		case QCMP_GT:
			append_age_range(out, f, bd, v + 1, psprintf("%s " OP("<=") " %s", bd, age_bound(st, f, v + 1)));
			break;
		case QCMP_LT:
			append_age_range(out, f, bd, -1, psprintf("%s " OP(">") " %s", bd, age_bound(st, f, v)));
			break;
		case QCMP_LE:
			append_age_range(out, f, bd, -1, psprintf("%s " OP(">") " %s", bd, age_bound(st, f, v + 1)));
			break;
		case QCMP_EQ:
			append_age_range(out, f, bd, v, psprintf("(%s " OP("<=") " %s AND %s " OP(">") " %s)", bd, age_bound(st, f, v), bd, age_bound(st, f, v + 1)));
			break;
		case QCMP_NE:
			append_age_range(out, f, bd, -1, psprintf("(%s " OP(">") " %s OR %s " OP("<=") " %s)", bd, age_bound(st, f, v), bd, age_bound(st, f, v + 1)));
			break;
	}
	return true;
}

static bool
compile_age_between(CompileState *st, StringInfo out, Scope *s, const QueryNode *n, const FieldInfo *f)
{
	int64		lo,
				hi;
	char	   *bd = psprintf("%s.%s", s->alias, quote_identifier("birthdate"));

	if (!whole_years(n->value, &lo) || !whole_years(n->value2, &hi))
		return false;
	if (n->negated)
		append_age_range(out, f, bd, -1, psprintf("(%s " OP(">") " %s OR %s " OP("<=") " %s)", bd, age_bound(st, f, lo), bd, age_bound(st, f, hi + 1)));
	else
		append_age_range(out, f, bd, lo, psprintf("(%s " OP("<=") " %s AND %s " OP(">") " %s)", bd, age_bound(st, f, lo), bd, age_bound(st, f, hi + 1)));
	return true;
}

/* ---------------------------------------------------------------------------------------
 * Condition dispatcher
 *
 * Three-valued logic is handled here, once.  A condition is true, false or unknown for a
 * row (unknown: a NULL field, min/max/sum/avg of no values, latest(...) of no rows), and a
 * row is selected when the whole condition is true, as in SQL.  `not` is not compiled as
 * SQL's NOT: it is pushed down to the predicates (De Morgan, which holds in three-valued
 * logic), and compile_fails emits for each predicate SQL that is true exactly when the
 * predicate is FALSE (unknown stays out).  What remains are AND/OR of predicates that are
 * each true or not, so a NULL meaning "no" and a false meaning "no" can no longer differ
 * between the whole-population form (grouped subqueries, semi-joins: never NULL) and the
 * restricted form (correlated scalars: NULL for no rows); each predicate's "holds" and
 * "fails" forms are written for both, in compile_agg and compile_latest.
 * ------------------------------------------------------------------------------------- */

/* SQL true exactly when condition n is false for the row in scope (never NULL when it matters) */
/*
 * An aggregate's or latest's result tested as a field is (between, in (...), is empty on an
 * aggregate) is the same tree of plain comparisons, which compile_cond and compile_fails
 * already give one three-valued meaning in both forms:
 *   r between a and b      r >= a and r <= b        (not: r < a or r > b)
 *   r in (v1, v2)          r = v1 or r = v2         (not: r != v1 and r != v2)
 *   agg(R.f) is empty      count(R.f) = 0           (not: count(R.f) >= 1): no values
 * NULL when the node is a plain comparison (or latest's own is [not] empty).
 */
static QueryNode *
result_copy(const QueryNode *n, QCmpOp cmp, QValue *v)
{
	QueryNode  *c = palloc(sizeof(QueryNode));

	memcpy(c, n, sizeof(QueryNode));
	c->result_test = QRES_CMP;
	c->empty_test = false;
	c->negated = false;
	c->cmp = cmp;
	c->value = v;
	c->value2 = NULL;
	c->values = NIL;
	return c;
}

static const QueryNode *
result_test_tree(const QueryNode *n)
{
	QueryNode  *t;
	ListCell   *lc;

	switch (n->result_test)
	{
		case QRES_CMP:
			return NULL;
		case QRES_EMPTY:
			if (n->type == QN_LATEST)
				return NULL;
			if (n->agg == QAGG_COUNT)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("count(...) is never empty at character %d", POS(n->location)),
						 errdetail("A count of no rows is 0."),
						 errhint("Write count(...) = 0.")));
			{
				QValue	   *v = palloc0(sizeof(QValue));
				QueryNode  *c;

				v->kind = QV_NUMBER;
				v->text = pstrdup(n->negated ? "1" : "0");
				v->location = n->location;
				c = result_copy(n, n->negated ? QCMP_GE : QCMP_EQ, v);
				c->agg = QAGG_COUNT;
				c->distinct = false;
				c->distinct_day = false;
				return c;
			}
		case QRES_BETWEEN:
			t = palloc0(sizeof(QueryNode));
			t->type = n->negated ? QN_OR : QN_AND;
			t->location = n->location;
			t->args = list_make2(result_copy(n, n->negated ? QCMP_LT : QCMP_GE, n->value),
								 result_copy(n, n->negated ? QCMP_GT : QCMP_LE, n->value2));
			return t;
		case QRES_IN_LIST:
			t = palloc0(sizeof(QueryNode));
			t->type = n->negated ? QN_AND : QN_OR;
			t->location = n->location;
			foreach(lc, n->values)
				t->args = lappend(t->args, result_copy(n, n->negated ? QCMP_NE : QCMP_EQ, lfirst(lc)));
			if (list_length(t->args) == 1)
				return linitial(t->args);
			return t;
	}
	return NULL;
}

static void
compile_result_tree(CompileState *st, StringInfo out, const QueryNode *t, Scope *s, int ind, bool fails)
{
	appendStringInfoChar(out, '(');
	if (fails)
		compile_fails(st, out, t, s, ind + 1);
	else
		compile_cond(st, out, t, s, ind + 1);
	appendStringInfoChar(out, ')');
}

static void
compile_fails(CompileState *st, StringInfo out, const QueryNode *n, Scope *s, int ind)
{
	ListCell   *lc;
	bool		first = true;

	check_stack_depth();
	switch (n->type)
	{
		case QN_AND:
		case QN_OR:
			/* not (A and B) = not A or not B; not (A or B) = not A and not B */
			appendStringInfoChar(out, '(');
			foreach(lc, n->args)
			{
				if (!first)
				{
					newline(out, ind + 1);
					appendStringInfoString(out, n->type == QN_AND ? "OR " : "AND ");
				}
				first = false;
				appendStringInfoChar(out, '(');
				compile_fails(st, out, lfirst(lc), s, ind + 2);
				appendStringInfoChar(out, ')');
			}
			appendStringInfoChar(out, ')');
			break;
		case QN_NOT:
			/* not not A: A holds */
			appendStringInfoChar(out, '(');
			compile_cond(st, out, n->arg, s, ind + 1);
			appendStringInfoChar(out, ')');
			break;
		case QN_AGG:
		case QN_LATEST:
			{
				const QueryNode *t = result_test_tree(n);

				if (t)
					compile_result_tree(st, out, t, s, ind, true);
				else if (n->type == QN_AGG)
					compile_agg(st, out, n, s, ind, true);
				else
					compile_latest(st, out, n, s, ind, true);
			}
			break;
		case QN_HAS:
		case QN_IN_SEGMENT:
			/* two-valued: an EXISTS is never NULL */
			appendStringInfoString(out, "NOT (");
			compile_cond(st, out, n, s, ind + 1);
			appendStringInfoChar(out, ')');
			break;
		default:
			/* a predicate on the row in scope: the same scalar in every form */
			appendStringInfoString(out, "(");
			compile_cond(st, out, n, s, ind + 1);
			appendStringInfoString(out, ") IS FALSE");
			break;
	}
}

/*
 * field [not] in this|last|next week|month|quarter|year: the calendar period in the query's
 * time zone (weeks start on Monday, as date_trunc counts them), start included, end
 * excluded: f >= start AND f < end (not: f < start OR f >= end).  Both bounds are computed
 * once (scalar subqueries).
 */
static char *
period_bound_sql(CompileState *st, FieldKind fk, QPeriod period, int shift)
{
	const char *tz = quote_literal_cstr(st->tz);
	const char *unit = period == QPERIOD_WEEK ? "week" : period == QPERIOD_MONTH ? "month" :
		period == QPERIOD_QUARTER ? "quarter" : "year";
	char	   *expr = psprintf("pg_catalog.date_trunc('%s', outreach.now() AT TIME ZONE %s)", unit, tz);

	if (shift != 0)
		expr = psprintf("(%s %s '%d %s'::interval)", expr, OP("+"),
						period == QPERIOD_QUARTER ? 3 * shift : shift,
						period == QPERIOD_WEEK ? "weeks" : period == QPERIOD_YEAR ? "years" : "months");
	if (fk == FK_DATE)
		return psprintf("(SELECT (%s)::pg_catalog.date)", expr);
	if (fk == FK_TIMESTAMPTZ)
		return psprintf("(SELECT %s AT TIME ZONE %s)", expr, tz);
	return psprintf("(SELECT %s)", expr);
}

static void
compile_period(CompileState *st, StringInfo out, const QueryNode *n, const FieldInfo *f, const char *fs)
{
	int			k = n->direction == QDIR_THIS ? 0 : n->direction == QDIR_LAST ? -1 : 1;
	char	   *lo = period_bound_sql(st, f->kind, n->period, k);
	char	   *hi = period_bound_sql(st, f->kind, n->period, k + 1);

	if (n->negated)
		appendStringInfo(out, "(%1$s " OP("<") " %2$s OR %1$s " OP(">=") " %3$s)", fs, lo, hi);
	else
		appendStringInfo(out, "(%1$s " OP(">=") " %2$s AND %1$s " OP("<") " %3$s)", fs, lo, hi);
}

/*
 * anniversary of f within last|next N unit (birthday: of contact.birthdate): a yearly
 * anniversary of the date falls in the window [a, b] of days (today and N units before or
 * after, both included) when the whole years from the date grow across it, counted as age
 * counts them: age(b, d) > age(a - 1 day, d), with d before a.  Someone born on 29 February
 * has the anniversary on 1 March in common years, the day age turns.
 */
static void
compile_anniversary(CompileState *st, StringInfo out, const QueryNode *n, const FieldInfo *f, const char *fs)
{
	char	   *d;
	char	   *a;
	char	   *b;

	if (n->unit == QUNIT_MINUTE || n->unit == QUNIT_HOUR)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an anniversary is a calendar day; \"%s\" counts whole days, not %s, at character %d",
						n->anniversary ? "anniversary of" : "birthday within",
						n->unit == QUNIT_MINUTE ? "minutes" : "hours", POS(n->location)),
				 errhint("Write birthday within next 14 days.")));
	if (f->kind == FK_DATE)
		d = pstrdup(fs);
	else if (f->kind == FK_TIMESTAMPTZ)
		d = psprintf("(%s AT TIME ZONE %s)::pg_catalog.date", fs, quote_literal_cstr(st->tz));
	else
		d = psprintf("(%s)::pg_catalog.date", fs);
	if (n->direction == QDIR_LAST)
	{
		a = relative_sql(st, FK_DATE, true, -1, n->amount, n->unit);
		b = relative_sql(st, FK_DATE, true, 0, 0, n->unit);
	}
	else
	{
		a = relative_sql(st, FK_DATE, true, 0, 0, n->unit);
		b = relative_sql(st, FK_DATE, true, +1, n->amount, n->unit);
	}
	appendStringInfo(out, "(%1$s " OP("<") " %2$s AND EXTRACT(YEAR FROM pg_catalog.age(%3$s::timestamp, %1$s::timestamp)) "
					 OP(">") " EXTRACT(YEAR FROM pg_catalog.age((%2$s " OP("-") " 1)::timestamp, %1$s::timestamp)))",
					 d, a, b);
}

static void
compile_cond(CompileState *st, StringInfo out, const QueryNode *n, Scope *s, int ind)
{
	FieldInfo  *f = NULL;
	char	   *fs = NULL;
	bool		anniversary = false;
	ListCell   *lc;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();

	switch (n->type)
	{
		case QN_CMP:
		case QN_MATCH:
		case QN_EMPTY:
		case QN_IN_LIST:
		case QN_IN_VALUE_SET:
		case QN_BETWEEN:
		case QN_WITHIN:
		case QN_OLDER_THAN:
			if (n->age_at && strcmp(s->entity->name, "contact") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"age at\" applies to contacts, not to \"%s\", at character %d",
								s->entity->name, POS(n->field_location)),
						 errhint("Write age at date '2024-12-31' in a condition on contacts.")));
			if (n->type == QN_WITHIN && n->period == QPERIOD_NONE && !n->anniversary &&
				strcmp(n->field, "birthday") == 0 && strcmp(s->entity->name, "contact") == 0 &&
				get_attnum(s->entity->relid, "birthday") == InvalidAttrNumber)
			{
				/* birthday within ...: the yearly anniversary of contact.birthdate */
				f = resolve_field(st, s->entity, "birthdate", n->field_location);
				anniversary = true;
			}
			else
				f = resolve_field(st, s->entity, n->field, n->field_location);
			if (n->type == QN_WITHIN && n->anniversary)
				anniversary = true;
			if (n->age_at)
			{
				if (!f->is_age)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("\"at\" applies to the age of a contact, not to field \"%s\" of \"%s\", at character %d",
									n->field, s->entity->name, POS(n->field_location)),
							 errhint("Write age at date '2024-12-31' in a condition on contacts.")));
				f->age_at = age_at_sql(st, n->age_at);
			}
			fs = field_sql(st, s, f);
			break;
		default:
			break;
	}

	switch (n->type)
	{
		case QN_AND:
		case QN_OR:
			{
				bool		first = true;

				int			nargs = list_length(n->args);
				bool	   *merged = palloc0(sizeof(bool) * Max(nargs, 1));
				int			k = -1;

				foreach(lc, n->args)
				{
					const QueryNode *a = lfirst(lc);
					bool		paren = (n->type == QN_AND && a->type == QN_OR) ||
						(n->type == QN_OR && a->type == QN_AND);
					List	   *group = NIL;

					k++;
					if (merged[k])
						continue;
					if (!first)
					{
						newline(out, ind);
						appendStringInfoString(out, n->type == QN_AND ? "AND " : "OR ");
					}
					first = false;
					if (n->type == QN_OR)
					{
						for (int j = k + 1; j < nargs; j++)
							if (!merged[j] && same_has(a, list_nth(n->args, j)))
							{
								if (group == NIL)
									group = list_make1((QueryNode *) a);
								group = lappend(group, list_nth(n->args, j));
								merged[j] = true;
							}
						if (group != NIL)
						{
							compile_has_any(st, out, group, s, ind);
							continue;
						}
					}
					if (paren)
						appendStringInfoChar(out, '(');
					compile_cond(st, out, a, s, ind + (paren ? 1 : 0));
					if (paren)
						appendStringInfoChar(out, ')');
				}
			}
			break;
		case QN_NOT:
			compile_fails(st, out, n->arg, s, ind);
			break;
		case QN_CMP:
			check_ordering(f, n->cmp, n->value->location);
			if (n->cmp == QCMP_EQ || n->cmp == QCMP_NE)
				check_allowed(f, n->value);
			if (f->is_age && compile_age_cmp(st, out, s, n, f))
				break;
			appendStringInfo(out, "%s %s %s", fs, cmp_sql(n->cmp), value_sql(st, f, n->value));
			break;
		case QN_MATCH:
			{
				char	   *pat;

				if (f->kind != FK_TEXT)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("field \"%s\" is %s; contains, starts with, ends with and matches apply to text at character %d",
									f->name, f->kind == FK_OTHER ? psprintf("of type %s", format_type_be(f->typid)) : kind_name(f->kind),
									POS(n->field_location)),
							 errhint("Compare it with =, <, > or between instead.")));
				if (n->value->kind != QV_STRING)
					value_mismatch(f, n->value, "Write the text in single quotes.");
				if (n->match == QMATCH_REGEX)
				{
					/* validated (and bounded) by the parser; case matters, (?i) ignores it */
					appendStringInfo(out, "%s %s %s", fs, n->negated ? OP("!~") : OP("~"),
									 quote_literal_cstr(n->value->text));
					break;
				}
				pat = literal_like_pattern(n->value->text);
				switch (n->match)
				{
					case QMATCH_CONTAINS:
						pat = psprintf("%%%s%%", pat);
						break;
					case QMATCH_STARTS_WITH:
						pat = psprintf("%s%%", pat);
						break;
					case QMATCH_ENDS_WITH:
						pat = psprintf("%%%s", pat);
						break;
					case QMATCH_REGEX:
						break;
				}
				appendStringInfo(out, "%s %s %s", fs, n->negated ? OP("!~~*") : OP("~~*"), quote_literal_cstr(pat));
			}
			break;
		case QN_EMPTY:
			if (f->kind == FK_TEXT)
				appendStringInfo(out, n->negated ? "(%s IS NOT NULL AND %s " OP("<>") " '')" : "(%s IS NULL OR %s " OP("=") " '')", fs, fs);
			else if (f->is_age && f->age_at)
			{
				char	   *bd = psprintf("%s.%s", s->alias, quote_identifier("birthdate"));

				if (n->negated)
					appendStringInfo(out, "%s " OP("<=") " %s", bd, f->age_at);
				else
					appendStringInfo(out, "(%s IS NULL OR %s " OP(">") " %s)", bd, bd, f->age_at);
			}
			else if (f->is_age)
				appendStringInfo(out, "%s.%s IS %sNULL", s->alias, quote_identifier("birthdate"), n->negated ? "NOT " : "");
			else
				appendStringInfo(out, "%s IS %sNULL", fs, n->negated ? "NOT " : "");
			break;
		case QN_IN_LIST:
			{
				bool		first = true;

				if (f->kind == FK_BOOL || f->kind == FK_OTHER)
					check_ordering(f, QCMP_EQ, n->field_location);
				/* x [NOT] IN (a, b) is NOT (x = ANY (ARRAY[a, b])), the same three-valued result */
				appendStringInfo(out, "%s(%s " OP("=") " ANY (ARRAY[", n->negated ? "NOT " : "", fs);
				foreach(lc, n->values)
				{
					QValue	   *v = lfirst(lc);

					check_allowed(f, v);
					if (!first)
						appendStringInfoString(out, ", ");
					first = false;
					appendStringInfoString(out, value_sql(st, f, v));
				}
				appendStringInfoString(out, "]))");
			}
			break;
		case QN_IN_VALUE_SET:
			{
				MemoryContext outer;
				Oid			argtypes[1] = {TEXTOID};
				Datum		args[1];
				int			ret;
				bool		exists;
				List	   *names = NIL;

				if (f->kind != FK_TEXT)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("field \"%s\" is %s; value sets hold text codes at character %d",
									f->name, kind_name(f->kind), POS(n->field_location))));
				if (st->opts->maintenance)
					goto value_set_sql;
				outer = spi_connect_checked();
				args[0] = CStringGetTextDatum(n->name);
				ret = SPI_execute_with_args("SELECT 1 FROM outreach.value_set_expansion WHERE name = $1 LIMIT 1",
											1, argtypes, args, NULL, true, 1);
				if (ret != SPI_OK_SELECT)
					elog(ERROR, "reading outreach.value_set failed: %s", SPI_result_code_string(ret));
				exists = (SPI_processed > 0);
				if (!exists)
				{
					ret = SPI_execute("SELECT DISTINCT name FROM outreach.value_set_expansion ORDER BY name", true, 0);
					if (ret != SPI_OK_SELECT)
						elog(ERROR, "reading outreach.value_set failed: %s", SPI_result_code_string(ret));
					for (uint64 i = 0; i < SPI_processed; i++)
						names = lappend(names, copy_value(outer, SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
				}
				SPI_finish();
				if (!exists)
				{
					const char *near = closest_name(n->name, names);

					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_OBJECT),
							 errmsg("value set \"%s\" does not exist at character %d", n->name, POS(n->name_location)),
							 near ? errhint("Did you mean '%s'?", near) :
							 errhint("Value sets are rows of outreach.value_set; add the codes first.")));
				}
		value_set_sql:
				/*
				 * match (code system, code) when the row has a code system column,
				 * <field>_system; the code alone otherwise
				 */
				{
					char	   *sys = psprintf("%s_system", f->name);

					if (get_attnum(s->entity->relid, sys) > 0)
						appendStringInfo(out, "%s((%s.%s, %s) " OP("=") " ANY (SELECT vs.code_system, vs.code FROM outreach.value_set_expansion AS vs WHERE vs.name " OP("=") " %s))",
										 n->negated ? "NOT " : "", s->alias, quote_identifier(sys), fs, quote_literal_cstr(n->name));
					else
						appendStringInfo(out, "%s(%s " OP("=") " ANY (SELECT vs.code FROM outreach.value_set_expansion AS vs WHERE vs.name " OP("=") " %s))",
										 n->negated ? "NOT " : "", fs, quote_literal_cstr(n->name));
				}
			}
			break;
		case QN_BETWEEN:
			check_ordering(f, QCMP_LT, n->value->location);
			if (f->is_age && compile_age_between(st, out, s, n, f))
				break;
			/* x NOT BETWEEN a AND b is x < a OR x > b */
			{
				char	   *lo = value_sql(st, f, n->value);
				char	   *hi = value_sql(st, f, n->value2);

				if (n->negated)
					appendStringInfo(out, "(%s " OP("<") " %s OR %s " OP(">") " %s)", fs, lo, fs, hi);
				else
					appendStringInfo(out, "(%s " OP(">=") " %s AND %s " OP("<=") " %s)", fs, lo, fs, hi);
			}
			break;
		case QN_WITHIN:
		case QN_OLDER_THAN:
			{
				bool		base_today;

				if (f->kind != FK_DATE && f->kind != FK_TIMESTAMP && f->kind != FK_TIMESTAMPTZ)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("field \"%s\" is %s; %s applies to dates and timestamps at character %d",
									f->name, kind_name(f->kind),
									n->type == QN_OLDER_THAN ? "older than" : n->period != QPERIOD_NONE ? "in this, last or next" :
									anniversary ? "anniversary" : "within", POS(n->field_location))));
				if (n->period != QPERIOD_NONE)
				{
					compile_period(st, out, n, f, fs);
					break;
				}
				check_amount(n->amount, n->location);
				check_span(span_days(n->amount, n->unit), n->location);
				if (anniversary)
				{
					compile_anniversary(st, out, n, f, fs);
					break;
				}
				/* dates count whole days from today; times count from now */
				base_today = (f->kind == FK_DATE && n->unit != QUNIT_MINUTE && n->unit != QUNIT_HOUR);
				if (n->type == QN_OLDER_THAN)
					appendStringInfo(out, "%s " OP("<") " %s", fs, relative_sql(st, f->kind, base_today, -1, n->amount, n->unit));
				else if (n->direction == QDIR_LAST)
					appendStringInfo(out, "(%1$s " OP(">=") " %2$s AND %1$s " OP("<=") " %3$s)", fs,
									 relative_sql(st, f->kind, base_today, -1, n->amount, n->unit),
									 relative_sql(st, f->kind, base_today, 0, 0, n->unit));
				else
					appendStringInfo(out, "(%1$s " OP(">=") " %2$s AND %1$s " OP("<=") " %3$s)", fs,
									 relative_sql(st, f->kind, base_today, 0, 0, n->unit),
									 relative_sql(st, f->kind, base_today, +1, n->amount, n->unit));
			}
			break;
		case QN_HAS:
			compile_has(st, out, n, s, ind);
			break;
		case QN_AGG:
		case QN_LATEST:
			{
				const QueryNode *t = result_test_tree(n);

				if (t)
					compile_result_tree(st, out, t, s, ind, false);
				else if (n->type == QN_AGG)
					compile_agg(st, out, n, s, ind, false);
				else
					compile_latest(st, out, n, s, ind, false);
			}
			break;
		case QN_IN_SEGMENT:
			{
				SegmentInfo *seg;

				if (strcmp(s->entity->name, "contact") != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("in segment applies to contacts, not to \"%s\", at character %d",
									s->entity->name, POS(n->location)),
							 errhint("Move the test out of the relation's where.")));
				seg = require_segment(st, n->name, n->name_location);
				appendStringInfo(out, "EXISTS (SELECT 1 FROM outreach.segment_member AS sm WHERE sm.segment_id " OP("=") " " INT64_FORMAT " AND sm.contact_id " OP("=") " %s.%s)",
								 seg->id, s->alias, quote_identifier(s->entity->key_column));
			}
			break;
		default:
			elog(ERROR, "unexpected segment query node %d in a condition", (int) n->type);
	}
}

/* ---------------------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------------------- */

/*
 * A set operation whose operands are all "contact [where ...]" (no "segment '...'"): one scan
 * of contact with the operands' filters combined (union: OR, intersect: AND, except: AND
 * NOT), instead of UNION/EXCEPT of full queries, each scanning contact and the set
 * operation sorting or hashing their results (2.1x the hand-written single scan).  A filter
 * can be NULL (status = 'inactive' on a contact without status): the contact is then not
 * in that operand's set, so a negated operand is coalesced to false first.
 */
static bool
setop_of_contacts(const QueryNode *n)
{
	if (n->type == QN_CONTACT)
		return true;
	if (n->type == QN_SETOP)
		return setop_of_contacts(n->left) && setop_of_contacts(n->right);
	return false;
}

static void
compile_setop_cond(CompileState *st, StringInfo out, const QueryNode *n, Scope *s, int ind)
{
	check_stack_depth();
	if (n->type == QN_CONTACT)
	{
		if (n->filter == NULL)
			appendStringInfoString(out, "true");
		else
		{
			appendStringInfoChar(out, '(');
			compile_cond(st, out, n->filter, s, ind + 1);
			appendStringInfoChar(out, ')');
		}
		return;
	}
	if (n->setop == QSET_UNION)
	{
		/* a chain of unions of filtered contact terms: one OR, so that has-terms merge */
		List	   *leaves = NIL;
		List	   *stack = list_make1((QueryNode *) n);
		bool		plain = true;

		while (stack != NIL && plain)
		{
			const QueryNode *x = llast(stack);

			stack = list_delete_last(stack);
			if (x->type == QN_SETOP && x->setop == QSET_UNION)
			{
				stack = lappend(stack, x->right);
				stack = lappend(stack, x->left);
			}
			else if (x->type == QN_CONTACT && x->filter != NULL)
				leaves = lappend(leaves, x->filter);
			else
				plain = false;
		}
		if (plain)
		{
			QueryNode  *or = palloc0(sizeof(QueryNode));

			or->type = QN_OR;
			or->location = n->location;
			or->args = leaves;
			appendStringInfoChar(out, '(');
			compile_cond(st, out, or, s, ind + 1);
			appendStringInfoChar(out, ')');
			return;
		}
	}
	appendStringInfoChar(out, '(');
	compile_setop_cond(st, out, n->left, s, ind + 1);
	newline(out, ind);
	switch (n->setop)
	{
		case QSET_UNION:
			appendStringInfoString(out, "OR ");
			compile_setop_cond(st, out, n->right, s, ind + 1);
			break;
		case QSET_INTERSECT:
			appendStringInfoString(out, "AND ");
			compile_setop_cond(st, out, n->right, s, ind + 1);
			break;
		case QSET_EXCEPT:
			appendStringInfoString(out, "AND NOT COALESCE(");
			compile_setop_cond(st, out, n->right, s, ind + 1);
			appendStringInfoString(out, ", false)");
			break;
	}
	appendStringInfoChar(out, ')');
}

/*
 * "SELECT c.id AS contact_id FROM contact AS c": the start of every query over contacts.
 * Returns the scope, with the contact key expression in *key.
 */
static Scope *
begin_contact_scan(CompileState *st, StringInfo out, int ind, char **key)
{
	EntityInfo *ce = find_entity(st, "contact");
	Scope	   *s;

	if (ce == NULL || ce->key_column == NULL)
		elog(ERROR, "entity \"contact\" is not registered");
	s = new_scope(st, ce, 'c');
	s->top = true;
	st->contact_scope = s;
	st->relation_depth = 0;
	*key = psprintf("%s.%s", s->alias, quote_identifier(ce->key_column));
	appendStringInfo(out, "SELECT %s AS contact_id", *key);
	newline(out, ind);
	appendStringInfo(out, "FROM %s AS %s", ce->qualname, s->alias);
	return s;
}

static void
compile_contact_setop(CompileState *st, StringInfo out, const QueryNode *n, int ind)
{
	char	   *key;
	Scope	   *s = begin_contact_scan(st, out, ind, &key);

	newline(out, ind);
	appendStringInfoString(out, "WHERE ");
	if (st->opts->restricted)
		appendStringInfo(out, "%s " OP("=") " ANY ($1::bigint[]) AND ", key);
	compile_setop_cond(st, out, n, s, ind + 1);
}

static void
compile_query(CompileState *st, StringInfo out, const QueryNode *n, int ind)
{
	check_stack_depth();
	switch (n->type)
	{
		case QN_CONTACT:
			{
				char	   *key;
				Scope	   *s = begin_contact_scan(st, out, ind, &key);

				if (st->opts->restricted)
				{
					newline(out, ind);
					appendStringInfo(out, "WHERE %s " OP("=") " ANY ($1::bigint[])", key);
					if (n->filter)
						append_and_cond(st, out, n->filter, s, ind + 1);
				}
				else if (n->filter)
				{
					newline(out, ind);
					appendStringInfoString(out, "WHERE ");
					compile_cond(st, out, n->filter, s, ind + 1);
				}
			}
			break;
		case QN_SEGMENT:
			{
				SegmentInfo *seg = require_segment(st, n->name, n->name_location);

				appendStringInfoString(out, "SELECT sm.contact_id");
				newline(out, ind);
				appendStringInfoString(out, "FROM outreach.segment_member AS sm");
				newline(out, ind);
				appendStringInfo(out, "WHERE sm.segment_id " OP("=") " " INT64_FORMAT, seg->id);
				if (st->opts->restricted)
					appendStringInfoString(out, " AND sm.contact_id " OP("=") " ANY ($1::bigint[])");
			}
			break;
		case QN_SETOP:
			if (setop_of_contacts(n))
			{
				compile_contact_setop(st, out, n, ind);
				break;
			}
			appendStringInfoChar(out, '(');
			newline(out, ind + 1);
			compile_query(st, out, n->left, ind + 1);
			newline(out, ind);
			appendStringInfoChar(out, ')');
			newline(out, ind);
			appendStringInfoString(out, n->setop == QSET_UNION ? "UNION" :
								   n->setop == QSET_INTERSECT ? "INTERSECT" : "EXCEPT");
			newline(out, ind);
			appendStringInfoChar(out, '(');
			newline(out, ind + 1);
			compile_query(st, out, n->right, ind + 1);
			newline(out, ind);
			appendStringInfoChar(out, ')');
			break;
		default:
			elog(ERROR, "unexpected segment query node %d at query level", (int) n->type);
	}
}

static const char *
validated_time_zone(const char *tz)
{
	if (tz == NULL)
		return pg_get_timezone_name(session_timezone);
	if (tz[0] == '\0' || pg_tzset(tz) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid time zone \"%s\"", tz),
				 errdetail("A time zone is an IANA name the server knows, as listed in pg_timezone_names."),
				 errhint("For example 'America/New_York' or 'UTC'.")));
	return tz;
}

char *
segment_query_compile(const QueryNode *node, const CompileOptions *opts)
{
	CompileState st;
	StringInfoData out;

	memset(&st, 0, sizeof(st));
	st.opts = opts;
	st.tz = validated_time_zone(opts->time_zone);
	load_registry(&st);
	initStringInfo(&out);
	compile_query(&st, &out, node, 0);
	return out.data;
}

/* ---------------------------------------------------------------------------------------
 * Dependencies
 * ------------------------------------------------------------------------------------- */

static void
collect_segment_refs(const QueryNode *n, List **names, List **locations)
{
	ListCell   *lc;

	if (n == NULL)
		return;
	check_stack_depth();
	if (n->type == QN_SEGMENT || n->type == QN_IN_SEGMENT)
	{
		*names = lappend(*names, n->name);
		*locations = lappend_int(*locations, n->name_location);
	}
	collect_segment_refs(n->left, names, locations);
	collect_segment_refs(n->right, names, locations);
	collect_segment_refs(n->arg, names, locations);
	collect_segment_refs(n->filter, names, locations);
	foreach(lc, n->args)
		collect_segment_refs(lfirst(lc), names, locations);
}

static bool
value_time_dependent(const QValue *v)
{
	return v != NULL && (v->kind == QV_TODAY || v->kind == QV_NOW);
}

static List *
add_unique(List *l, const char *s)
{
	ListCell   *lc;

	foreach(lc, l)
		if (strcmp((char *) lfirst(lc), s) == 0)
			return l;
	return lappend(l, pstrdup(s));
}

static void
collect_deps(const QueryNode *n, QueryDependencies *d)
{
	ListCell   *lc;

	if (n == NULL)
		return;
	check_stack_depth();
	switch (n->type)
	{
		case QN_CONTACT:
			d->entities = add_unique(d->entities, "contact");
			break;
		case QN_SEGMENT:
		case QN_IN_SEGMENT:
			d->segments = add_unique(d->segments, n->name);
			break;
		case QN_WITHIN:
		case QN_OLDER_THAN:
			d->time_dependent = true;
			break;
		case QN_HAS:
		case QN_AGG:
		case QN_LATEST:
			if (n->relation)
				d->entities = add_unique(d->entities, n->relation->entity);
			break;
		default:
			break;
	}
	/* age counts to today, unless "age at" names a date that does not move */
	if (n->field && strcmp(n->field, "age") == 0 &&
		(n->age_at == NULL || value_time_dependent(n->age_at)))
		d->time_dependent = true;
	if (value_time_dependent(n->value) || value_time_dependent(n->value2))
		d->time_dependent = true;
	/* contact.field in a relation reads the contact's row */
	if (value_refers_to_contact(n->value) || value_refers_to_contact(n->value2))
		d->entities = add_unique(d->entities, "contact");
	foreach(lc, n->values)
		if (value_refers_to_contact(lfirst(lc)))
			d->entities = add_unique(d->entities, "contact");
	foreach(lc, n->values)
		if (value_time_dependent(lfirst(lc)))
			d->time_dependent = true;
	collect_deps(n->left, d);
	collect_deps(n->right, d);
	collect_deps(n->arg, d);
	collect_deps(n->filter, d);
	foreach(lc, n->args)
		collect_deps(lfirst(lc), d);
}

QueryDependencies *
segment_query_dependencies(const QueryNode *node)
{
	QueryDependencies *d = palloc0(sizeof(QueryDependencies));

	collect_deps(node, d);
	return d;
}

/* ---------------------------------------------------------------------------------------
 * Relevance of a changed row (maintenance)
 * ------------------------------------------------------------------------------------- */

/* does the subtree read other rows (relations, segments) rather than only the row in scope? */
static bool
reads_other_rows(const QueryNode *n)
{
	ListCell   *lc;

	if (n == NULL)
		return false;
	check_stack_depth();
	if (n->type == QN_HAS || n->type == QN_AGG || n->type == QN_LATEST ||
		n->type == QN_IN_SEGMENT || n->type == QN_SEGMENT || n->type == QN_CONTACT)
		return true;
	if (reads_other_rows(n->arg) || reads_other_rows(n->filter) ||
		reads_other_rows(n->left) || reads_other_rows(n->right))
		return true;
	foreach(lc, n->args)
		if (reads_other_rows(lfirst(lc)))
			return true;
	return false;
}

static bool
uses_entity(const QueryNode *n, const char *entity)
{
	ListCell   *lc;

	if (n == NULL)
		return false;
	check_stack_depth();
	if ((n->type == QN_HAS || n->type == QN_AGG || n->type == QN_LATEST) &&
		n->relation != NULL && strcmp(n->relation->entity, entity) == 0)
		return true;
	if (uses_entity(n->arg, entity) || uses_entity(n->filter, entity) ||
		uses_entity(n->left, entity) || uses_entity(n->right, entity))
		return true;
	foreach(lc, n->args)
		if (uses_entity(lfirst(lc), entity))
			return true;
	return false;
}

typedef struct RelevanceState
{
	CompileState *st;
	const char *entity;
	EntityInfo *info;
	bool		always;			/* some use of the entity sees every row */
	bool		local;			/* every filter reads only the row itself */
	StringInfoData out;			/* OR of the filters */
	int			nfilters;
} RelevanceState;

static void
collect_relevance(RelevanceState *rs, const QueryNode *n)
{
	ListCell   *lc;

	if (n == NULL || rs->always)
		return;
	check_stack_depth();
	if ((n->type == QN_HAS || n->type == QN_AGG || n->type == QN_LATEST) &&
		n->relation != NULL && strcmp(n->relation->entity, rs->entity) == 0)
	{
		if (n->filter == NULL || uses_entity(n->filter, rs->entity))
		{
			/* unfiltered, or the filter reads the entity again (possibly the changed row) */
			rs->always = true;
			return;
		}
		else
		{
			Scope		s;

			memset(&s, 0, sizeof(s));
			s.entity = rs->info;
			strlcpy(s.alias, "tr", sizeof(s.alias));
			if (reads_other_rows(n->filter))
				rs->local = false;
			appendStringInfoString(&rs->out, rs->nfilters > 0 ? " OR (" : "(");
			compile_cond(rs->st, &rs->out, n->filter, &s, 1);
			appendStringInfoChar(&rs->out, ')');
			rs->nfilters++;
		}
	}
	collect_relevance(rs, n->left);
	collect_relevance(rs, n->right);
	collect_relevance(rs, n->arg);
	collect_relevance(rs, n->filter);
	foreach(lc, n->args)
		collect_relevance(rs, lfirst(lc));
}

/*
 * A boolean SQL expression over a row "tr" of the given entity that is false only when a
 * change of that row cannot change the query's result: every use of the entity in the query
 * (has, count/sum/..., latest, at any depth) looks only at rows satisfying its filter, so the
 * expression is the OR of those filters.  Returns NULL when any row may matter (the entity is
 * contact, a use has no filter, or a filter reads the entity again).  *local is set when the
 * expression reads only the row itself (no other table rows), so it can be evaluated before
 * the contacts are locked.  Compiled restricted (correlated subqueries).
 */
char *
segment_query_relevance(const QueryNode *node, const char *entity, const char *time_zone, bool *local)
{
	CompileState st;
	CompileOptions opts;
	RelevanceState rs;

	*local = false;
	if (strcmp(entity, "contact") == 0)
		return NULL;
	memset(&opts, 0, sizeof(opts));
	opts.restricted = true;
	opts.time_zone = time_zone;
	memset(&st, 0, sizeof(st));
	st.opts = &opts;
	st.tz = validated_time_zone(time_zone);
	load_registry(&st);
	memset(&rs, 0, sizeof(rs));
	rs.st = &st;
	rs.entity = entity;
	rs.info = find_entity(&st, entity);
	rs.local = true;
	if (rs.info == NULL)
		return NULL;
	initStringInfo(&rs.out);
	collect_relevance(&rs, node);
	if (rs.always)
		return NULL;
	*local = rs.local;
	if (rs.nfilters == 0)
		return pstrdup("false");
	return rs.out.data;
}

/* ---------------------------------------------------------------------------------------
 * Back paths of nested uses (see query.h, segment_query_back_paths)
 * ------------------------------------------------------------------------------------- */

typedef struct BackState
{
	CompileState *st;
	const char *entity;
	EntityInfo *contact;
	StringInfoData out;
	int			n;
} BackState;

/* "SELECT contact ids FROM contact JOIN R1 ... JOIN outreach_new AS tr" for the path */
static void
back_emit(BackState *bs, List *path)
{
	Scope	   *prev;
	ListCell   *lc;
	int			i = 1;

	prev = palloc0(sizeof(Scope));
	prev->entity = bs->contact;
	strlcpy(prev->alias, "b0", sizeof(prev->alias));
	appendStringInfo(&bs->out, "%sSELECT b0.%s AS contact_id FROM %s AS b0",
					 bs->n > 0 ? " UNION " : "", quote_identifier(bs->contact->key_column), bs->contact->qualname);
	foreach(lc, path)
	{
		const QueryNode *n = lfirst(lc);
		EntityInfo *re = require_entity(bs->st, n->relation->entity, n->relation->location);
		Edge		edge = resolve_edge(bs->st, prev->entity, re, n->relation);
		Scope	   *r = palloc0(sizeof(Scope));
		char	   *outer,
				   *inner;
		bool		last = (lnext(path, lc) == NULL);

		r->entity = re;
		if (last)
			strlcpy(r->alias, "tr", sizeof(r->alias));
		else
			snprintf(r->alias, sizeof(r->alias), "b%d", i++);
		edge_columns(prev, r, &edge, &outer, &inner, n->relation->location);
		appendStringInfo(&bs->out, " JOIN %s AS %s ON %s " OP("=") " %s",
						 last ? "outreach_new" : re->qualname, r->alias, inner, outer);
		prev = r;
	}
	bs->n++;
}

static void
back_walk(BackState *bs, const QueryNode *n, List *path)
{
	ListCell   *lc;

	if (n == NULL)
		return;
	check_stack_depth();
	switch (n->type)
	{
		case QN_CONTACT:
			back_walk(bs, n->filter, NIL);
			return;
		case QN_SETOP:
			back_walk(bs, n->left, NIL);
			back_walk(bs, n->right, NIL);
			return;
		case QN_HAS:
		case QN_AGG:
		case QN_LATEST:
			if (n->relation != NULL)
			{
				List	   *p = lappend(list_copy(path), (void *) n);

				if (list_length(p) >= 2 && strcmp(n->relation->entity, bs->entity) == 0)
					back_emit(bs, p);
				back_walk(bs, n->filter, p);
				return;
			}
			break;
		default:
			break;
	}
	back_walk(bs, n->arg, path);
	back_walk(bs, n->left, path);
	back_walk(bs, n->right, path);
	foreach(lc, n->args)
		back_walk(bs, lfirst(lc), path);
}

char *
segment_query_back_paths(const QueryNode *node, const char *entity, const char *time_zone)
{
	CompileState st;
	CompileOptions opts;
	BackState	bs;

	if (strcmp(entity, "contact") == 0)
		return NULL;
	memset(&opts, 0, sizeof(opts));
	opts.restricted = true;
	opts.maintenance = true;
	opts.time_zone = time_zone;
	memset(&st, 0, sizeof(st));
	st.opts = &opts;
	st.tz = validated_time_zone(time_zone);
	load_registry(&st);
	memset(&bs, 0, sizeof(bs));
	bs.st = &st;
	bs.entity = entity;
	bs.contact = find_entity(&st, "contact");
	if (bs.contact == NULL || bs.contact->key_column == NULL || find_entity(&st, entity) == NULL)
		return NULL;
	initStringInfo(&bs.out);
	back_walk(&bs, node, NIL);
	return bs.n > 0 ? bs.out.data : NULL;
}

/* ---------------------------------------------------------------------------------------
 * Maintenance by delta (see query.h, segment_query_delta)
 * ------------------------------------------------------------------------------------- */

typedef struct DeltaState
{
	CompileState *st;
	const char *entity;
	EntityInfo *info;
	Scope	   *contact;
	bool		ok;
	char	   *link_column;
	List	   *atoms;			/* DeltaAtom * */
	int		   *form;
	int			nform;
	int			cap;
} DeltaState;

static void
delta_emit(DeltaState *ds, int v)
{
	if (ds->nform == ds->cap)
	{
		ds->cap *= 2;
		ds->form = repalloc(ds->form, sizeof(int) * ds->cap);
	}
	ds->form[ds->nform++] = v;
}

static void
delta_walk(DeltaState *ds, const QueryNode *n)
{
	ListCell   *lc;

	if (!ds->ok)
		return;
	check_stack_depth();
	if (n->type == QN_AND || n->type == QN_OR)
	{
		delta_emit(ds, n->type == QN_AND ? DELTA_AND : DELTA_OR);
		delta_emit(ds, list_length(n->args));
		foreach(lc, n->args)
			delta_walk(ds, lfirst(lc));
		return;
	}
	if ((n->type == QN_HAS || n->type == QN_AGG || n->type == QN_LATEST) &&
		n->relation != NULL && strcmp(n->relation->entity, ds->entity) == 0)
	{
		Edge		edge;
		DeltaAtom  *a;
		StringInfoData buf;
		Scope		r;

		if (n->filter != NULL &&
			(reads_other_rows(n->filter) || refers_to_contact(n->filter) || uses_entity(n->filter, ds->entity)))
		{
			ds->ok = false;
			return;
		}
		edge = resolve_edge(ds->st, ds->contact->entity, ds->info, n->relation);
		if (!edge.one_to_many || (ds->link_column != NULL && strcmp(ds->link_column, edge.column) != 0))
		{
			ds->ok = false;
			return;
		}
		if (n->type != QN_HAS)
		{
			/*
			 * An aggregate or latest: its value after a change is known only by evaluating
			 * it, which costs what evaluating the segment for the contact costs.
			 */
			ds->ok = false;
			return;
		}
		ds->link_column = edge.column;
		a = palloc0(sizeof(DeltaAtom));
		a->kind = n->type != QN_HAS ? DELTA_TERM : n->negated ? DELTA_HAS_NO : DELTA_HAS;
		initStringInfo(&buf);
		if (n->filter == NULL)
			appendStringInfoString(&buf, "true");
		else
		{
			memset(&r, 0, sizeof(r));
			r.entity = ds->info;
			strlcpy(r.alias, "tr", sizeof(r.alias));
			ds->st->relation_depth = 1;
			compile_cond(ds->st, &buf, n->filter, &r, 1);
			ds->st->relation_depth = 0;
		}
		a->row_pred = buf.data;
		initStringInfo(&buf);
		ds->st->contact_scope = ds->contact;
		compile_cond(ds->st, &buf, n, ds->contact, 1);
		a->term_sql = buf.data;
		delta_emit(ds, DELTA_ATOM);
		delta_emit(ds, list_length(ds->atoms));
		ds->atoms = lappend(ds->atoms, a);
		return;
	}
	if (uses_entity(n, ds->entity))
	{
		ds->ok = false;
		return;
	}
	delta_emit(ds, DELTA_OTHER);
}

/*
 * For maintenance by delta: the atoms of "contact where F" that read the entity, and F as a
 * formula over them; NULL when the query is not of that shape (see query.h).  Compiled
 * restricted, in the given time zone, like the segment's own SQL.
 */
SegmentDelta *
segment_query_delta(const QueryNode *node, const char *entity, const char *time_zone)
{
	CompileState st;
	CompileOptions opts;
	DeltaState	ds;
	SegmentDelta *d;
	EntityInfo *ce;
	int			i = 0;
	ListCell   *lc;

	if (node == NULL || node->type != QN_CONTACT || node->filter == NULL || strcmp(entity, "contact") == 0)
		return NULL;
	memset(&opts, 0, sizeof(opts));
	opts.restricted = true;
	opts.maintenance = true;
	opts.time_zone = time_zone;
	memset(&st, 0, sizeof(st));
	st.opts = &opts;
	st.tz = validated_time_zone(time_zone);
	load_registry(&st);
	memset(&ds, 0, sizeof(ds));
	ds.st = &st;
	ds.entity = entity;
	ds.info = find_entity(&st, entity);
	ce = find_entity(&st, "contact");
	if (ds.info == NULL || ce == NULL || ce->key_column == NULL)
		return NULL;
	ds.contact = new_scope(&st, ce, 'c');
	snprintf(ds.contact->alias, sizeof(ds.contact->alias), "c0");
	ds.contact->top = true;
	ds.ok = true;
	ds.cap = 16;
	ds.form = palloc(sizeof(int) * ds.cap);
	delta_walk(&ds, node->filter);
	if (!ds.ok || ds.atoms == NIL)
		return NULL;
	d = palloc0(sizeof(SegmentDelta));
	d->link_column = ds.link_column;
	d->natoms = list_length(ds.atoms);
	d->atoms = palloc(sizeof(DeltaAtom) * d->natoms);
	foreach(lc, ds.atoms)
		d->atoms[i++] = *(DeltaAtom *) lfirst(lc);
	d->nform = ds.nform;
	d->form = ds.form;
	return d;
}

/* ---------------------------------------------------------------------------------------
 * SQL entry points
 * ------------------------------------------------------------------------------------- */

/* The tree of a segment_query argument, and its text (for positions). */
static QueryNode *
query_arg(FunctionCallInfo fcinfo, int argno, char **text_out)
{
	char	   *src = segment_query_datum_to_cstring(PG_GETARG_DATUM(argno));

	if (text_out)
		*text_out = src;
	return segment_query_parse(src);
}

static ArrayType *
text_list_to_array(List *l)
{
	Datum	   *elems = palloc(sizeof(Datum) * (list_length(l) + 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, l)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT);
}

/* outreach.compile(q, restricted, time_zone) returns text */
Datum
outreach_compile(PG_FUNCTION_ARGS)
{
	CompileOptions opts;
	char	   *src;
	QueryNode  *q;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	memset(&opts, 0, sizeof(opts));
	q = query_arg(fcinfo, 0, &src);
	opts.restricted = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	opts.time_zone = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	opts.source_text = src;
	PG_RETURN_TEXT_P(cstring_to_text(segment_query_compile(q, &opts)));
}

/* outreach.validate(q, segment_name, time_zone) returns void: compile and discard */
Datum
outreach_validate(PG_FUNCTION_ARGS)
{
	CompileOptions opts;
	char	   *src;
	QueryNode  *q;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	memset(&opts, 0, sizeof(opts));
	q = query_arg(fcinfo, 0, &src);
	opts.segment_name = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	opts.time_zone = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	opts.source_text = src;
	(void) segment_query_compile(q, &opts);
	PG_RETURN_VOID();
}

/* outreach.query_dependencies(q, OUT entities text[], OUT segments text[], OUT time_dependent boolean) */
Datum
outreach_query_dependencies(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	QueryDependencies *d;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	d = segment_query_dependencies(query_arg(fcinfo, 0, NULL));
	values[0] = PointerGetDatum(text_list_to_array(d->entities));
	values[1] = PointerGetDatum(text_list_to_array(d->segments));
	values[2] = BoolGetDatum(d->time_dependent);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
