/*
 * membership.c: keeps segment membership current (DESIGN §4).
 *
 * Every registered entity table carries four statement-level AFTER triggers (INSERT, UPDATE,
 * DELETE with transition tables, and TRUNCATE) that call outreach_membership_trigger.  From
 * the changed rows the trigger finds the affected contacts through the entity's link path
 * (one set-based query over the transition tables), locks those contacts, re-evaluates only
 * the live segments that depend on the entity and only for those contacts, writes the
 * difference to segment_member and segment_change, and cascades to the segments built on
 * the changed ones (compound segments, `in segment`).
 *
 * Per-contact serialisation: before evaluating, the contacts are "stamped": one upsert per
 * contact into outreach.contact_stamp, in id order.  Two writers of the same contact thus
 * queue on that row lock (writers of different contacts never meet), and in READ COMMITTED
 * the evaluation that follows runs with a fresh snapshot that sees the other writer's
 * committed rows.  Under REPEATABLE READ / SERIALIZABLE a stamp written by a transaction
 * that committed after our snapshot makes the upsert fail with a serialization failure
 * (40001), which the client retries: membership is never silently computed from a stale
 * snapshot.
 *
 * A per-backend cache holds the live segments, which entity each depends on, the dependency
 * order between segments, and the SPI plans (kept with SPI_keepplan).  It is rebuilt when a
 * relcache invalidation of outreach.segment arrives; outreach._membership_invalidate() sends
 * one from every function that changes what is live or how it is defined.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/ruleutils.h"
#include "tcop/tcopprot.h"
#include "nodes/plannodes.h"
#include "utils/tuplestore.h"
#include "executor/executor.h"
#include "executor/tuptable.h"

#include "outreach.h"
#include "membership.h"
#include "query.h"

PG_FUNCTION_INFO_V1(outreach_membership_trigger);
PG_FUNCTION_INFO_V1(outreach_apply_segment);
PG_FUNCTION_INFO_V1(outreach_apply_segment_nowait);
PG_FUNCTION_INFO_V1(outreach_cascade_segment);
PG_FUNCTION_INFO_V1(outreach_lock_contacts);
PG_FUNCTION_INFO_V1(outreach_apply_pending);
PG_FUNCTION_INFO_V1(outreach_membership_invalidate);

/* One live segment. */
typedef struct SegEntry
{
	int64		id;
	bool		deferred;
	bool		is_static;
	char	   *sql;			/* restricted SQL ($1 bigint[]), NULL for static */
	char	   *definition;		/* canonical query text, NULL for static */
	char	   *time_zone;
	int			level;			/* 0: no segment dependencies; else 1 + max(level of deps) */
	int			ndeps;			/* segments this one reads */
	int		   *deps;			/* indexes */
	int			ndependents;	/* segments reading this one */
	int		   *dependents;		/* indexes */
	struct DiffPlan *diff;		/* this segment alone */
} SegEntry;

/* One registered entity table with live segments that depend on it. */
typedef struct EntityEntry
{
	Oid			relid;			/* hash key */
	char	   *entity;
	int			nsegs;
	int		   *segs;			/* indexes of the live segments depending on it */
	int			nbase;			/* immediate, dynamic, level 0: evaluated together */
	int		   *base;
	struct DiffPlan *base_diff;	/* all of base together */
	SPIPlanPtr	affected_plan[3];	/* insert, update, delete */
	AttrNumber	direct_attnum;	/* 0: not looked up; -1: none; else the contact id column */

	/*
	 * Relevance of changed rows (see relevance_prepare): per segment of segs, a predicate on
	 * a row "tr" (NULL: every row is relevant).  All predicates are evaluated by one query
	 * over the transition tables per statement, and only the segments a changed row is
	 * relevant to are re-evaluated.
	 */
	bool		rel_ready;
	char	  **rel_pred;		/* per segs[k] */
	int			nrel;			/* non-NULL predicates */
	bool	   *rel_local;		/* per segs[k]: the predicate reads only the row itself */
	SPIPlanPtr	rel_plan[3];	/* insert, update, delete */
	bool		fast_tried;
	int			nfast;			/* > 0: the row-only predicates as executor expressions */
	int		   *fast_seg;		/* per fast predicate: its k in segs */
	ExprState **fast_state;
	ExprContext *fast_econtext;
	List	   *subset_plans;	/* SubsetPlan *: diff plans of subsets of base */

	/*
	 * Maintenance by delta (delta_maintain): per segs[k], the atoms of its query that read
	 * this entity (NULL: the segment is re-evaluated).  All atoms of all segments are
	 * numbered flat (0..ndatoms-1) for the one query testing changed rows against them.
	 */
	SegmentDelta **delta;
	int			ndatoms;
	int		   *datom_k;		/* per flat atom: its k in segs */
	int		   *datom_first;	/* per k: its first flat atom */
	SPIPlanPtr	delta_row_plan[3];	/* insert, update, delete */
	int			dfast;			/* 0: not tried; 1: dfast_state usable; -1: use delta_row_plan */
	char	   *back_sql;		/* contacts concerned through nested uses (segment_query_back_paths), or NULL */
	SPIPlanPtr	back_plan[3];
	ExprState **dfast_state;	/* the contact column, then each flat atom's filter */
	ExprContext *dfast_econtext;
	List	   *term_plans;		/* TermPlan * */
} EntityEntry;

/* A kept plan evaluating some atoms (flat numbers, key) for the contacts in $1. */
typedef struct TermPlan
{
	char	   *key;
	SPIPlanPtr	plan;
} TermPlan;

/* A kept diff plan for a subset of an entity's base segments. */
typedef struct SubsetPlan
{
	char	   *key;			/* the segment indexes, comma separated */
	struct DiffPlan *dp;
} SubsetPlan;

/*
 * How a set of segments is compared with their stored members for some contacts.  A few
 * contacts (single-row statements): the kept generic plan of want_sql gives the members
 * the segments want, one index probe per contact reads what they have, and the difference
 * is taken here in C.  (As one SQL statement, the generic plan of the "have" side read the
 * whole membership of the segments through the primary key: 5 ms per write with 25
 * segments at 20,000 contacts, growing with the population.)  Many contacts (bulk): the
 * whole difference as one SQL statement planned for the actual array (diff_sql).
 */
typedef struct DiffPlan
{
	int			nseg;
	int64	   *seg_ids;		/* sorted */
	char	   *want_sql;		/* (segment_id, contact_id) the segments want among $1 */
	SPIPlanPtr	want_plan;
	char	   *diff_sql;		/* (segment_id, contact_id, added) for $1 */
} DiffPlan;

#define MAX_SUBSET_PLANS 64

enum
{
	EV_INSERT = 0, EV_UPDATE = 1, EV_DELETE = 2
};

static MemoryContext cache_cxt = NULL;
static bool cache_valid = false;
static bool callback_registered = false;
static Oid	segment_relid = InvalidOid;
static int	nsegs = 0;
static SegEntry *segs = NULL;
static int *seg_order = NULL;	/* indexes by level */
static HTAB *entity_hash = NULL;
static List *kept_plans = NIL;	/* every plan we kept, freed on rebuild */
static SPIPlanPtr apply_plan = NULL;
static SPIPlanPtr pending_plan = NULL;
static bool pending_per_statement = true;
bool		outreach_membership_delta = true;	/* outreach.membership_delta */
#define delta_enabled outreach_membership_delta	/* segment_pending of 0.2.0 (see record_pending) */
static SPIPlanPtr stamp_plan = NULL;
static int	depth = 0;			/* nesting of our entry points: rebuild only at 0 */
static int64 only_segment = -1; /* >= 0: the trigger maintains only this segment (after a failure) */
static uint64 inval_count = 0;	/* invalidations seen, to detect one during a rebuild */

static void
membership_relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == segment_relid || !OidIsValid(segment_relid))
	{
		cache_valid = false;
		inval_count++;
	}
	/* an entity table changed shape: its compiled relevance expressions may be stale */
	else if (entity_hash != NULL && hash_search(entity_hash, &relid, HASH_FIND, NULL) != NULL)
	{
		cache_valid = false;
		inval_count++;
	}
}

/*
 * Prepare and keep a plan.  Generic plans: the parameters are contact id arrays of a few
 * elements, and re-planning per statement would cost more than the evaluation itself.
 * (run_diff plans large arrays one-shot instead, as a cursor.)
 */
static SPIPlanPtr
keep_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
	MemoryContext old;

	if (plan == NULL)
		elog(ERROR, "outreach: SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "outreach: SPI_keepplan failed");
	old = MemoryContextSwitchTo(cache_cxt);
	kept_plans = lappend(kept_plans, plan);
	MemoryContextSwitchTo(old);
	return plan;
}

static int
seg_index(int64 id)
{
	int			lo = 0,
				hi = nsegs - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (segs[mid].id == id)
			return mid;
		if (segs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static int64 *
datum_int8_array(Datum d, int *n)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	bool	   *nulls;
	int64	   *out;
	int			k = 0;

	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, n);
	out = palloc(sizeof(int64) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		if (!nulls[i])
			out[k++] = DatumGetInt64(elems[i]);
	*n = k;
	return out;
}

static Datum
int8_array_datum(int64 *vals, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(vals[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* sort and de-duplicate in place, returning the new length */
static int
sort_unique(int64 *v, int n)
{
	int			k = 0;

	if (n <= 1)
		return n;
	qsort(v, n, sizeof(int64), cmp_int64);
	for (int i = 0; i < n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	return k;
}

/*
 * Errors of a segment's evaluation that must not abort the clinical write that triggered
 * it: bad data for the segment's arithmetic (22xxx), a table or column gone under the
 * definition (42xxx except privileges), a limit (54xxx).  Everything else (serialization
 * failures, deadlocks, cancels, privileges, out of memory) propagates as before.
 */
/*
 * outreach.segment_failure exists (0.3.0): a 0.2.0 schema still running on this library
 * until ALTER EXTENSION outreach UPDATE has no place to record failures, and keeps the
 * behaviour of 0.2.0 (the error aborts the write).
 */
static bool
failure_table_exists(void)
{
	Oid			nsp = get_namespace_oid("outreach", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("segment_failure", nsp));
}

static bool
isolated_error(int sqlerrcode)
{
	int			cat = ERRCODE_TO_CATEGORY(sqlerrcode);

	if (sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
		return false;
	return cat == ERRCODE_DATA_EXCEPTION || cat == ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION ||
		cat == ERRCODE_PROGRAM_LIMIT_EXCEEDED || sqlerrcode == ERRCODE_UNDEFINED_OBJECT;
}

/*
 * The maintenance of a segment failed: record it (outreach.segment_failure, shown by
 * segment_overview), warn, and let the write go on.  The segment is left out of
 * maintenance until outreach.tick() (or alter_segment) re-evaluates it fully.
 */
static void
record_failure(int64 segment_id, ErrorData *edata)
{
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		args[3];
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "outreach: SPI_connect failed");
	args[0] = Int64GetDatum(segment_id);
	args[1] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[2] = CStringGetTextDatum(edata->message ? edata->message : "unknown error");
	ret = SPI_execute_with_args("INSERT INTO outreach.segment_failure (segment_id, sqlstate, error) "
								"SELECT $1, $2, $3 RETURNING (SELECT s.name FROM outreach.segment s WHERE s.id = $1)",
								3, types, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "outreach: recording a segment failure failed: %s", SPI_result_code_string(ret));
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("maintenance of segment \"%s\" failed: %s",
					SPI_processed > 0 && SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) ?
					SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : "?",
					edata->message ? edata->message : "unknown error"),
			 errdetail("The write was kept; the segment's members are not maintained until it is re-evaluated."),
			 errhint("outreach.segment_overview shows the failure; outreach.tick() re-evaluates the segment, or fix its definition with outreach.alter_segment().")));
	SPI_finish();
}

/*
 * Compile one segment's restricted SQL, in a subtransaction: a definition that no longer
 * compiles (a column dropped, a type changed) marks that segment failed instead of failing
 * every write.  Returns NULL on such a failure.  Caller is connected to SPI.
 */
static char *
compile_guarded(int64 id, const char *definition, const char *time_zone)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char	   *volatile result = NULL;
	ErrorData  *volatile failed = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		CompileOptions opts;
		char	   *sql;

		memset(&opts, 0, sizeof(opts));
		opts.restricted = true;
		opts.maintenance = true;
		opts.time_zone = time_zone;
		opts.source_text = definition;
		sql = segment_query_compile(segment_query_parse(definition), &opts);
		result = MemoryContextStrdup(cache_cxt, sql);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* the subtransaction goes first, whatever happens next (as PL/pgSQL does) */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (!isolated_error(edata->sqlerrcode) || !failure_table_exists())
			ReThrowError(edata);
		failed = edata;
	}
	PG_END_TRY();
	if (failed != NULL)
	{
		/* record_failure connects again: we are inside the caller's SPI connection */
		record_failure(id, failed);
		return NULL;
	}
	return result;
}

/* Load the live segments and their dependencies.  Caller is connected to SPI. */
static void
rebuild_cache(void)
{
	MemoryContext old;
	HASHCTL		ctl;
	int			ret;
	bool		changed;
	uint64		inval_at_start;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(membership_relcache_cb, (Datum) 0);
		callback_registered = true;
	}
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(CacheMemoryContext, "outreach membership cache",
										  ALLOCSET_DEFAULT_SIZES);
	/* plans first: they live outside cache_cxt */
	{
		ListCell   *lc;

		foreach(lc, kept_plans)
			SPI_freeplan((SPIPlanPtr) lfirst(lc));
	}
	kept_plans = NIL;
	apply_plan = pending_plan = stamp_plan = NULL;
	MemoryContextReset(cache_cxt);
	entity_hash = NULL;
	segs = NULL;
	nsegs = 0;
	seg_order = NULL;

	elog(DEBUG1, "outreach: loading the live segments");

	/* an invalidation arriving while we read (or an error) leaves the cache invalid */
	cache_valid = false;
	inval_at_start = inval_count;
	segment_relid = get_relname_relid("segment", get_namespace_oid("outreach", false));

	/*
	 * The shape of segment_pending: a 0.1.0 install still running on this library until
	 * ALTER EXTENSION outreach UPDATE has one row per segment and contact.  (The update
	 * replaces the table and creates a trigger on segment, which invalidates this cache.)
	 */
	ret = SPI_execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute "
					  "WHERE attrelid = 'outreach.segment_pending'::regclass AND attname = 'segment_ids' AND NOT attisdropped)",
					  true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "outreach: reading the shape of segment_pending failed");
	{
		bool		isnull;

		pending_per_statement = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}

	/*
	 * What runs is compiled here from the definition (a segment_query, checked by the
	 * compiler against the registry), never read back from stored SQL text: a role that may
	 * write outreach.segment could otherwise make every writer run SQL of its choosing.
	 */
	ret = SPI_execute(failure_table_exists() ?
					  "SELECT s.id, s.mode = 'deferred', s.kind = 'static' OR s.definition IS NULL, NULL::text, "
					  "s.definition, s.time_zone "
					  "FROM outreach.segment s WHERE s.status = 'live' "
					  "AND NOT EXISTS (SELECT 1 FROM outreach.segment_failure f WHERE f.segment_id = s.id) "
					  "ORDER BY s.id" :
					  "SELECT s.id, s.mode = 'deferred', s.kind = 'static' OR s.definition IS NULL, NULL::text, "
					  "s.definition, s.time_zone "
					  "FROM outreach.segment s WHERE s.status = 'live' ORDER BY s.id", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "outreach: reading live segments failed: %s", SPI_result_code_string(ret));
	old = MemoryContextSwitchTo(cache_cxt);
	nsegs = (int) SPI_processed;
	segs = palloc0(sizeof(SegEntry) * Max(nsegs, 1));
	for (int i = 0; i < nsegs; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		segs[i].id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		segs[i].deferred = DatumGetBool(SPI_getbinval(tup, td, 2, &isnull));
		segs[i].is_static = DatumGetBool(SPI_getbinval(tup, td, 3, &isnull));
		d = SPI_getbinval(tup, td, 4, &isnull);
		segs[i].sql = isnull ? NULL : TextDatumGetCString(d);
		segs[i].definition = SPI_getvalue(tup, td, 5);
		segs[i].time_zone = SPI_getvalue(tup, td, 6);
		segs[i].deps = palloc(sizeof(int) * Max(nsegs, 1));
		segs[i].dependents = palloc(sizeof(int) * Max(nsegs, 1));
	}
	MemoryContextSwitchTo(old);
	/* compile after reading (the compiler uses SPI too, which replaces SPI_tuptable) */
	for (int i = 0; i < nsegs; i++)
	{
		if (!segs[i].is_static && segs[i].definition != NULL)
			segs[i].sql = compile_guarded(segs[i].id, segs[i].definition, segs[i].time_zone);
		if (segs[i].sql == NULL)
			segs[i].is_static = true;
	}

	ret = SPI_execute("SELECT d.segment_id, d.depends_on FROM outreach.segment_dependency d "
					  "JOIN outreach.segment s ON s.id = d.segment_id AND s.status = 'live' "
					  "JOIN outreach.segment t ON t.id = d.depends_on AND t.status = 'live'", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "outreach: reading segment dependencies failed: %s", SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int			a = seg_index(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)));
		int			b = seg_index(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull)));

		if (a < 0 || b < 0 || a == b)
			continue;
		segs[a].deps[segs[a].ndeps++] = b;
		segs[b].dependents[segs[b].ndependents++] = a;
	}
	/* levels by relaxation; the graph is acyclic (checked when definitions change) */
	do
	{
		changed = false;
		for (int i = 0; i < nsegs; i++)
			for (int k = 0; k < segs[i].ndeps; k++)
				if (segs[i].level < segs[segs[i].deps[k]].level + 1 && segs[i].level <= nsegs)
				{
					segs[i].level = segs[segs[i].deps[k]].level + 1;
					changed = true;
				}
	} while (changed);
	old = MemoryContextSwitchTo(cache_cxt);
	seg_order = palloc(sizeof(int) * Max(nsegs, 1));
	{
		int			k = 0;

		for (int lvl = 0; k < nsegs && lvl <= nsegs + 1; lvl++)
			for (int i = 0; i < nsegs; i++)
				if (segs[i].level == lvl)
					seg_order[k++] = i;
	}
	MemoryContextSwitchTo(old);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(EntityEntry);
	ctl.hcxt = cache_cxt;
	entity_hash = hash_create("outreach membership entities", 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	ret = SPI_execute("SELECT e.relation::oid, e.name, array_agg(se.segment_id ORDER BY se.segment_id) "
					  "FROM outreach.segment_entity se "
					  "JOIN outreach.entity e ON e.name = se.entity "
					  "JOIN outreach.segment s ON s.id = se.segment_id AND s.status = 'live' "
					  "GROUP BY 1, 2", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "outreach: reading segment entities failed: %s", SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tup, td, 1, &isnull));
		char	   *name = SPI_getvalue(tup, td, 2);
		int			n;
		int64	   *ids = datum_int8_array(SPI_getbinval(tup, td, 3, &isnull), &n);
		EntityEntry *e;
		bool		found;

		e = hash_search(entity_hash, &relid, HASH_ENTER, &found);
		old = MemoryContextSwitchTo(cache_cxt);
		e->entity = pstrdup(name);
		e->segs = palloc(sizeof(int) * Max(n, 1));
		e->base = palloc(sizeof(int) * Max(n, 1));
		e->nsegs = e->nbase = 0;
		e->base_diff = NULL;
		e->direct_attnum = 0;
		e->rel_ready = false;
		e->rel_pred = NULL;
		e->nrel = 0;
		e->rel_local = NULL;
		e->fast_tried = false;
		e->nfast = 0;
		memset(e->rel_plan, 0, sizeof(e->rel_plan));
		e->subset_plans = NIL;
		e->delta = NULL;
		e->ndatoms = 0;
		memset(e->delta_row_plan, 0, sizeof(e->delta_row_plan));
		e->dfast = 0;
		e->back_sql = NULL;
		memset(e->back_plan, 0, sizeof(e->back_plan));
		e->term_plans = NIL;
		memset(e->affected_plan, 0, sizeof(e->affected_plan));
		for (int i = 0; i < n; i++)
		{
			int			ix = seg_index(ids[i]);

			if (ix < 0 || segs[ix].is_static)
				continue;
			e->segs[e->nsegs++] = ix;
			if (!segs[ix].deferred && segs[ix].level == 0)
				e->base[e->nbase++] = ix;
		}
		MemoryContextSwitchTo(old);
	}
	cache_valid = (inval_count == inval_at_start);
}

static void
ensure_cache(void)
{
	if (cache_valid && segs != NULL)
		return;
	if (depth > 1 && segs != NULL)
		return;					/* nested call: keep using what the outer level uses */
	rebuild_cache();
}

/*
 * The SQL computing the difference between what segments want and what they have, for
 * the contacts in $1.  Written as two anti-joins probing segment_member's primary key, so
 * the generic plan never scans a segment's whole membership.
 */
static char *
want_sql(int *ixs, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int k = 0; k < n; k++)
	{
		SegEntry   *s = &segs[ixs[k]];

		if (k > 0)
			appendStringInfoString(&buf, " UNION ALL ");
		appendStringInfo(&buf,
						 "SELECT " INT64_FORMAT "::bigint AS segment_id, w.contact_id FROM (%s) AS w(contact_id) "
						 "WHERE w.contact_id = ANY($1)", s->id, s->sql);
	}
	return buf.data;
}

static char *
diff_sql(int *ixs, int n)
{
	StringInfoData buf;
	StringInfoData list;

	initStringInfo(&buf);
	initStringInfo(&list);
	appendStringInfoString(&buf, "WITH want AS MATERIALIZED (");
	for (int k = 0; k < n; k++)
	{
		SegEntry   *s = &segs[ixs[k]];

		if (k > 0)
			appendStringInfoString(&buf, " UNION ALL ");
		appendStringInfo(&buf,
						 "SELECT " INT64_FORMAT "::bigint AS segment_id, w.contact_id FROM (%s) AS w(contact_id) "
						 "WHERE w.contact_id = ANY($1)", s->id, s->sql);
		appendStringInfo(&list, "%s" INT64_FORMAT, k > 0 ? "," : "", s->id);
	}
	appendStringInfo(&buf,
					 ") SELECT w.segment_id, w.contact_id, true FROM want w "
					 "WHERE NOT EXISTS (SELECT 1 FROM outreach.segment_member m "
					 "                  WHERE m.segment_id = w.segment_id AND m.contact_id = w.contact_id) "
					 "UNION ALL "
					 "SELECT m.segment_id, m.contact_id, false "
					 "FROM unnest($1) AS u(contact_id) "
					 "JOIN outreach.segment_member m ON m.contact_id = u.contact_id AND m.segment_id = ANY('{%s}'::bigint[]) "
					 "WHERE NOT EXISTS (SELECT 1 FROM want w WHERE w.segment_id = m.segment_id AND w.contact_id = m.contact_id)",
					 list.data);
	return buf.data;
}

/*
 * The DiffPlan of segments ixs: in cache_cxt with its want plan kept; or, transient, in the
 * current memory context without a kept plan (the tick's groups, which change every time).
 */
static DiffPlan *
make_diff_lazy(int *ixs, int n, bool transient)
{
	MemoryContext old = MemoryContextSwitchTo(transient ? CurrentMemoryContext : cache_cxt);
	DiffPlan   *dp = palloc0(sizeof(DiffPlan));
	Oid			types[1] = {INT8ARRAYOID};

	dp->nseg = n;
	dp->seg_ids = palloc(sizeof(int64) * Max(n, 1));
	for (int k = 0; k < n; k++)
		dp->seg_ids[k] = segs[ixs[k]].id;
	dp->nseg = sort_unique(dp->seg_ids, n);
	dp->want_sql = want_sql(ixs, n);
	dp->diff_sql = diff_sql(ixs, n);
	MemoryContextSwitchTo(old);
	if (!transient)
		dp->want_plan = keep_plan(dp->want_sql, 1, types);
	return dp;
}

static DiffPlan *
make_diff(int *ixs, int n)
{
	return make_diff_lazy(ixs, n, false);
}

/* Per-segment lists of changed contacts, filled by apply_diff. */
typedef struct Work
{
	int64	  **eval;			/* contacts to evaluate, per segment index */
	int		   *neval;
	int64	  **changed;		/* contacts whose membership changed */
	int		   *nchanged;
	int		   *changed_cap;	/* allocated length of changed[i] (work_append) */
	int64		total_changes;
	int		   *pend;			/* deferred segments to record (indexes), see record_pending */
	int			npend;
	/* decided changes not yet written (out_flush): one write for a whole statement */
	int64	   *os;
	int64	   *oc;
	bool	   *oa;
	int			nout;
	int			capout;
} Work;

static Work *
work_new(void)
{
	Work	   *w = palloc0(sizeof(Work));

	w->eval = palloc0(sizeof(int64 *) * Max(nsegs, 1));
	w->neval = palloc0(sizeof(int) * Max(nsegs, 1));
	w->changed = palloc0(sizeof(int64 *) * Max(nsegs, 1));
	w->nchanged = palloc0(sizeof(int) * Max(nsegs, 1));
	w->changed_cap = palloc0(sizeof(int) * Max(nsegs, 1));
	w->pend = palloc0(sizeof(int) * Max(nsegs, 1));
	return w;
}

static void apply_pairs(int64 *sids, int64 *cids, bool *added, int n, Work *w);

static void
out_add(Work *w, int64 sid, int64 cid, bool added)
{
	if (w->nout == w->capout)
	{
		w->capout = Max(16, w->capout * 2);
		w->os = w->os ? repalloc(w->os, sizeof(int64) * w->capout) : palloc(sizeof(int64) * w->capout);
		w->oc = w->oc ? repalloc(w->oc, sizeof(int64) * w->capout) : palloc(sizeof(int64) * w->capout);
		w->oa = w->oa ? repalloc(w->oa, sizeof(bool) * w->capout) : palloc(sizeof(bool) * w->capout);
	}
	w->os[w->nout] = sid;
	w->oc[w->nout] = cid;
	w->oa[w->nout++] = added;
}

/* Write the decided changes (and fire segment_change's statement triggers) once. */
static void
out_flush(Work *w)
{
	int			n = w->nout;

	if (n == 0)
		return;
	w->nout = 0;
	apply_pairs(w->os, w->oc, w->oa, n, w);
}

static void
work_add(int64 **arr, int *n, int64 *vals, int nvals)
{
	int64	   *m;

	if (nvals == 0)
		return;
	m = palloc(sizeof(int64) * (*n + nvals));
	if (*n > 0)
		memcpy(m, *arr, sizeof(int64) * *n);
	memcpy(m + *n, vals, sizeof(int64) * nvals);
	if (*arr != NULL)
		pfree(*arr);
	*n = sort_unique(m, *n + nvals);
	*arr = m;
}

/*
 * Append changed contacts of one applied batch, unsorted (run_work sorts once before
 * cascading).  Sorting and copying the whole list at every batch made a bulk statement's
 * bookkeeping quadratic: 1.3 GB of backend memory for a 1M-row COPY.
 */
static void
work_append(Work *w, int ix, int64 *vals, int nvals)
{
	int			need = w->nchanged[ix] + nvals;

	if (nvals == 0)
		return;
	if (w->changed[ix] == NULL)
	{
		w->changed_cap[ix] = Max(need, 16);
		w->changed[ix] = palloc(sizeof(int64) * w->changed_cap[ix]);
	}
	else if (need > w->changed_cap[ix])
	{
		w->changed_cap[ix] = Max(need, Max(w->nchanged[ix], w->changed_cap[ix]) * 2);
		w->changed[ix] = repalloc(w->changed[ix], sizeof(int64) * w->changed_cap[ix]);
	}
	memcpy(w->changed[ix] + w->nchanged[ix], vals, sizeof(int64) * nvals);
	w->nchanged[ix] = need;
}

/*
 * Run a diff plan for the given contacts and write the difference: members in and out,
 * one INSERT into segment_change per batch (journeys hook on that statement).
 *
 * A few contacts (a single-row write): the kept generic plan.  More than
 * ONE_SHOT_THRESHOLD (a bulk statement, the tick, a re-evaluation): one plan for the actual
 * array, run once as a cursor whose rows are applied DIFF_BATCH at a time, so the memory
 * stays bounded (a 100,000-row COPY with 20 segments peaked at 1.5 GB of backend memory
 * when its whole result was held at once) and the whole-table parts of the plan (hashed
 * subplans over a relation) are computed once, not once per chunk of contacts: evaluating
 * 10,000 contacts at a time made a bulk statement's cost grow with the number of chunks
 * times the size of the table.  The cursor keeps the snapshot it started with, so the
 * changes applied between fetches do not alter the rows still to come.
 *
 * The plan is made for BULK_CHUNK contacts at a time: planning "= ANY" of a constant array
 * estimates each element and holds that memory until the plan is freed (about 290 MB per
 * restriction for a million contacts: a 1M-row COPY with 20 segments peaked at 1.3 GB).
 * 100,000 contacts bound it while recomputing the whole-table parts at most once per
 * 100,000 contacts.  Measured at 1M and not kept: the generic plan with "IN (SELECT
 * unnest($1))" and a FULL JOIN diff (415 MB, but 165 s instead of 102 s: every contact
 * through the indexes), "IN (SELECT unnest($1))" planned for the array (628 MB, 161 s), and
 * the generic "= ANY ($1)" plan (its index scan over a million array keys had not finished
 * after 4 minutes).
 */
#define ONE_SHOT_THRESHOLD 1000
#define DIFF_BATCH 10000
#define BULK_CHUNK 100000

static void apply_rows(uint64 nrows, Work *w);

typedef struct Pair
{
	int64		s;
	int64		c;
} Pair;

static int
cmp_pair(const void *a, const void *b)
{
	const Pair *x = a,
			   *y = b;

	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	return x->c < y->c ? -1 : (x->c > y->c ? 1 : 0);
}

/* The (segment_id, contact_id) rows of SPI_tuptable as pairs (freed). */
static Pair *
tuptable_pairs(uint64 nrows, int *n)
{
	Pair	   *p = palloc(sizeof(Pair) * Max(nrows, 1));

	for (uint64 r = 0; r < nrows; r++)
	{
		bool		isnull;

		p[r].s = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		p[r].c = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	*n = (int) nrows;
	if (nrows > 1)
		qsort(p, nrows, sizeof(Pair), cmp_pair);
	return p;
}

/* The stored members among the contacts ids (sorted pairs), of every segment. */
static Pair *
have_pairs(Datum arg, int *n)
{
	static SPIPlanPtr have_plan = NULL;
	int			ret;

	if (have_plan == NULL)
	{
		Oid			types[1] = {INT8ARRAYOID};

		/* kept outside cache_cxt's plan list: the text never changes */
		have_plan = SPI_prepare_cursor("SELECT m.segment_id, m.contact_id FROM outreach.segment_member m "
									   "WHERE m.contact_id OPERATOR(pg_catalog.=) ANY ($1)", 1, types,
									   CURSOR_OPT_GENERIC_PLAN);
		if (have_plan == NULL || SPI_keepplan(have_plan) != 0)
			elog(ERROR, "outreach: preparing the membership probe failed");
	}
	ret = SPI_execute_plan(have_plan, &arg, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "outreach: reading segment members failed: %s", SPI_result_code_string(ret));
	return tuptable_pairs(SPI_processed, n);
}

static bool
has_segment(DiffPlan *dp, int64 sid)
{
	int			lo = 0,
				hi = dp->nseg - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (dp->seg_ids[mid] == sid)
			return true;
		if (dp->seg_ids[mid] < sid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

static void
run_diff(DiffPlan *dp, int64 *ids, int n, Work *w, bool flush)
{
	Datum		arg = int8_array_datum(ids, n);
	const char *sql = dp->diff_sql;
	int			ret;

	if (n <= ONE_SHOT_THRESHOLD)
	{
		Pair	   *want,
				   *have;
		int			nwant,
					nhave,
					a = 0,
					b = 0;

		SPIPlanPtr	plan = dp->want_plan;

		if (plan == NULL)
		{
			/* a DiffPlan of one tick (make_diff_lazy): planned for this call only */
			Oid			types[1] = {INT8ARRAYOID};

			plan = SPI_prepare(dp->want_sql, 1, types);
			if (plan == NULL)
				elog(ERROR, "outreach: SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), dp->want_sql);
		}
		ret = SPI_execute_plan(plan, &arg, NULL, false, 0);
		if (plan != dp->want_plan)
			SPI_freeplan(plan);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "outreach: evaluating segments failed: %s", SPI_result_code_string(ret));
		want = tuptable_pairs(SPI_processed, &nwant);
		have = have_pairs(arg, &nhave);
		/* merge: wanted and not had -> added; had (by these segments) and not wanted -> removed */
		while (a < nwant || b < nhave)
		{
			int			c;

			if (b < nhave && !has_segment(dp, have[b].s))
			{
				b++;
				continue;
			}
			c = a >= nwant ? 1 : b >= nhave ? -1 : cmp_pair(&want[a], &have[b]);
			if (c == 0)
			{
				a++;
				b++;
			}
			else if (c < 0)
			{
				if (a == 0 || cmp_pair(&want[a - 1], &want[a]) != 0)
					out_add(w, want[a].s, want[a].c, true);
				a++;
			}
			else
			{
				out_add(w, have[b].s, have[b].c, false);
				b++;
			}
		}
		if (flush)
			out_flush(w);
		pfree(want);
		pfree(have);
	}
	else
	{
		Oid			types[1] = {INT8ARRAYOID};
		int			nest = NewGUCNestLevel();

		out_flush(w);

		/*
		 * Without JIT: the plan of all the table's segments is large, and compiling it
		 * cost more than evaluating (72% of a 20,000-row COPY with 20 segments was LLVM).
		 */
		(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		for (int off = 0; off < n; off += BULK_CHUNK)
		{
			int			m = Min(BULK_CHUNK, n - off);
			Datum		chunk = m == n ? arg : int8_array_datum(ids + off, m);
			Portal		portal;

			portal = SPI_cursor_open_with_args(NULL, sql, 1, types, &chunk, NULL, false, CURSOR_OPT_NO_SCROLL);
			if (portal == NULL)
				elog(ERROR, "outreach: evaluating segments failed: %s", SPI_result_code_string(SPI_result));
			for (;;)
			{
				SPI_cursor_fetch(portal, true, DIFF_BATCH);
				if (SPI_processed == 0)
				{
					SPI_freetuptable(SPI_tuptable);
					break;
				}
				apply_rows(SPI_processed, w);
			}
			SPI_cursor_close(portal);
			if (chunk != arg)
				pfree(DatumGetPointer(chunk));
		}
		AtEOXact_GUC(true, nest);
	}
	pfree(DatumGetPointer(arg));
}

/* Write the diff rows in SPI_tuptable (segment_id, contact_id, added), and free them. */
static void
apply_rows(uint64 nrows, Work *w)
{
	if (nrows == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return;
	}
	{
		int64	   *sv = palloc(sizeof(int64) * nrows);
		int64	   *cv = palloc(sizeof(int64) * nrows);
		bool	   *av = palloc(sizeof(bool) * nrows);

		for (uint64 r = 0; r < nrows; r++)
		{
			bool		isnull;

			sv[r] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			cv[r] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
			av[r] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3, &isnull));
		}
		/* the values are by-value (bigint, boolean): the result set can go now */
		SPI_freetuptable(SPI_tuptable);
		apply_pairs(sv, cv, av, (int) nrows, w);
		pfree(sv);
		pfree(cv);
		pfree(av);
	}
}

/* Write membership changes (segment, contact, added) and record them in the work. */
static void
apply_pairs(int64 *sids, int64 *cids, bool *added, int nrows, Work *w)
{
	int			ret;
	Datum	   *sd,
			   *cd,
			   *ad;
	Datum		args[3];

	if (nrows == 0)
		return;
	sd = palloc(sizeof(Datum) * nrows);
	cd = palloc(sizeof(Datum) * nrows);
	ad = palloc(sizeof(Datum) * nrows);
	for (int r = 0; r < nrows; r++)
	{
		sd[r] = Int64GetDatum(sids[r]);
		cd[r] = Int64GetDatum(cids[r]);
		ad[r] = BoolGetDatum(added[r]);
	}
	if (apply_plan == NULL)
	{
		Oid			types[3] = {INT8ARRAYOID, INT8ARRAYOID, BOOLARRAYOID};

		apply_plan = keep_plan(
							   "WITH d AS (SELECT * FROM unnest($1, $2, $3) AS d(segment_id, contact_id, added)), "
							   "del AS (DELETE FROM outreach.segment_member m "
							   "        WHERE m.segment_id OPERATOR(pg_catalog.=) ANY ($1) AND m.contact_id OPERATOR(pg_catalog.=) ANY ($2) "
							   "          AND (m.segment_id, m.contact_id) IN (SELECT d.segment_id, d.contact_id FROM d WHERE NOT d.added) "
							   "        RETURNING m.segment_id, m.contact_id), "
							   "ins AS (INSERT INTO outreach.segment_member (segment_id, contact_id, added_at) "
							   "        SELECT d.segment_id, d.contact_id, outreach.now() FROM d WHERE d.added "
							   "        ON CONFLICT DO NOTHING RETURNING segment_id, contact_id) "
							   "INSERT INTO outreach.segment_change (segment_id, contact_id, change, changed_at) "
							   "SELECT segment_id, contact_id, 'added', outreach.now() FROM ins "
							   "UNION ALL SELECT segment_id, contact_id, 'removed', outreach.now() FROM del "
							   "RETURNING segment_id, contact_id", 3, types);
	}
	args[0] = PointerGetDatum(construct_array(sd, nrows, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(cd, nrows, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(ad, nrows, BOOLOID, 1, true, TYPALIGN_CHAR));
	ret = SPI_execute_plan(apply_plan, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "outreach: applying membership changes failed: %s", SPI_result_code_string(ret));
	w->total_changes += SPI_processed;
	{
		/* gathered per segment first: adding one id at a time re-sorted the list each time */
		uint64		nchg = SPI_processed;
		int		   *six = palloc(sizeof(int) * Max(nchg, 1));
		int64	   *cids = palloc(sizeof(int64) * Max(nchg, 1));
		int		   *nbuf = palloc0(sizeof(int) * Max(nsegs, 1));

		for (uint64 r = 0; r < nchg; r++)
		{
			bool		isnull;

			six[r] = seg_index(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)));
			cids[r] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
			if (six[r] >= 0)
				nbuf[six[r]]++;
		}
		SPI_freetuptable(SPI_tuptable);
		for (int ix = 0; ix < nsegs; ix++)
		{
			int64	   *buf;
			int			k = 0;

			if (nbuf[ix] == 0)
				continue;
			buf = palloc(sizeof(int64) * nbuf[ix]);
			for (uint64 r = 0; r < nchg; r++)
				if (six[r] == ix)
					buf[k++] = cids[r];
			work_append(w, ix, buf, k);
			pfree(buf);
		}
		pfree(six);
		pfree(cids);
		pfree(nbuf);
	}
	pfree(sd);
	pfree(cd);
	pfree(ad);
	pfree(DatumGetPointer(args[0]));
	pfree(DatumGetPointer(args[1]));
	pfree(DatumGetPointer(args[2]));
}

/*
 * Record what deferred segments must re-evaluate: one segment_pending row per distinct
 * contact list (usually one per statement: all the deferred segments a statement concerns
 * get the same contacts), however many rows the statement wrote.
 */
static void
record_pending(Work *w)
{
	bool	   *done;

	if (w->npend == 0)
		return;
	if (pending_plan == NULL)
	{
		Oid			types[2] = {INT8ARRAYOID, INT8ARRAYOID};

		pending_plan = keep_plan(pending_per_statement
								 ? "INSERT INTO outreach.segment_pending (segment_ids, contact_ids) VALUES ($1, $2)"
								 : "INSERT INTO outreach.segment_pending (segment_id, contact_id) "
								 "SELECT s, c FROM unnest($1) AS s, unnest($2) AS c ON CONFLICT DO NOTHING",
								 2, types);
	}
	done = palloc0(sizeof(bool) * w->npend);
	for (int a = 0; a < w->npend; a++)
	{
		int64	   *sids;
		int			ns = 0;
		Datum		args[2];
		int			ret;
		int			ia = w->pend[a];

		if (done[a])
			continue;
		sids = palloc(sizeof(int64) * w->npend);
		for (int b = a; b < w->npend; b++)
		{
			int			ib = w->pend[b];

			if (done[b] || w->neval[ib] != w->neval[ia] ||
				(w->eval[ib] != w->eval[ia] &&
				 memcmp(w->eval[ib], w->eval[ia], sizeof(int64) * w->neval[ia]) != 0))
				continue;
			done[b] = true;
			sids[ns++] = segs[ib].id;
		}
		args[0] = int8_array_datum(sids, ns);
		args[1] = int8_array_datum(w->eval[ia], w->neval[ia]);
		ret = SPI_execute_plan(pending_plan, args, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "outreach: recording deferred changes failed: %s", SPI_result_code_string(ret));
		pfree(DatumGetPointer(args[0]));
		pfree(DatumGetPointer(args[1]));
		pfree(sids);
	}
	pfree(done);
	w->npend = 0;
}

/*
 * Serialise maintenance per contact (see the file header).  ids must be sorted and distinct,
 * so two transactions lock common contacts in the same order.
 */
static void
stamp_contacts(int64 *ids, int n)
{
	Datum		arg;
	int			ret;

	if (n == 0)
		return;
	if (stamp_plan == NULL)
	{
		Oid			types[1] = {INT8ARRAYOID};

		stamp_plan = keep_plan("INSERT INTO outreach.contact_stamp AS s (contact_id, stamped_by) "
							   "SELECT c, pg_current_xact_id() FROM unnest($1) WITH ORDINALITY AS u(c, o) ORDER BY o "
							   "ON CONFLICT (contact_id) DO UPDATE SET stamped_by = excluded.stamped_by", 1, types);
	}
	arg = int8_array_datum(ids, n);
	ret = SPI_execute_plan(stamp_plan, &arg, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "outreach: locking contacts failed: %s", SPI_result_code_string(ret));
}

/*
 * Create the stamp rows that do not exist yet, without waiting: a writer stamping one of
 * these contacts for the first time holds its new row's key until it commits, and the
 * insert would wait for it.  Under a short lock_timeout, in a subtransaction; when it
 * times out nothing is inserted, and the contacts without a stamp row are skipped.
 */
static pg_noinline void
insert_stamps_nowait(SPIPlanPtr insert_plan, Datum arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	int			nest = NewGUCNestLevel();

	(void) set_config_option("lock_timeout", "20", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		int			ret = SPI_execute_plan(insert_plan, &arg, NULL, false, 0);

		if (ret != SPI_OK_INSERT)
			elog(ERROR, "outreach: locking contacts failed: %s", SPI_result_code_string(ret));
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
}

/*
 * The tick's stamping (see outreach._apply_segment(id, ids, nowait)): lock the stamps of
 * the contacts that no writer holds, skip the others.  The tick thus never waits for a
 * writer's stamp, so a writer (an opt-out) can wait for a tick but never deadlock with it.
 * Returns the locked contacts (sorted) in *locked; the skipped ones in *skipped.
 */
static void
stamp_contacts_nowait(int64 *ids, int n, int64 **locked, int *nlocked, int64 **skipped, int *nskipped)
{
	Datum		arg;
	int			ret;
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr lock_plan = NULL;
	int			k = 0;

	*locked = palloc(sizeof(int64) * Max(n, 1));
	*skipped = palloc(sizeof(int64) * Max(n, 1));
	*nlocked = *nskipped = 0;
	if (n == 0)
		return;
	if (insert_plan == NULL || lock_plan == NULL || stamp_plan == NULL)
	{
		Oid			types[1] = {INT8ARRAYOID};

		/* kept outside cache_cxt's plan list: these texts never change */
		insert_plan = SPI_prepare("INSERT INTO outreach.contact_stamp AS s (contact_id, stamped_by) "
								  "SELECT c, pg_current_xact_id() FROM unnest($1) AS c "
								  "WHERE NOT EXISTS (SELECT 1 FROM outreach.contact_stamp x WHERE x.contact_id = c) "
								  "ORDER BY c ON CONFLICT (contact_id) DO NOTHING", 1, types);
		if (insert_plan == NULL || SPI_keepplan(insert_plan) != 0)
			elog(ERROR, "outreach: preparing the tick's stamps failed");
		lock_plan = SPI_prepare("UPDATE outreach.contact_stamp s SET stamped_by = pg_current_xact_id() "
								"WHERE s.contact_id IN (SELECT x.contact_id FROM outreach.contact_stamp x "
								"WHERE x.contact_id = ANY ($1) ORDER BY x.contact_id FOR UPDATE SKIP LOCKED) "
								"RETURNING s.contact_id", 1, types);
		if (lock_plan == NULL || SPI_keepplan(lock_plan) != 0)
			elog(ERROR, "outreach: preparing the tick's stamps failed");
	}
	arg = int8_array_datum(ids, n);
	insert_stamps_nowait(insert_plan, arg);
	ret = SPI_execute_plan(lock_plan, &arg, NULL, false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "outreach: locking contacts failed: %s", SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;

		(*locked)[(*nlocked)++] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	*nlocked = sort_unique(*locked, *nlocked);
	/* ids and *locked are sorted: the difference in one pass */
	for (int i = 0; i < n; i++)
	{
		while (k < *nlocked && (*locked)[k] < ids[i])
			k++;
		if (k >= *nlocked || (*locked)[k] != ids[i])
			(*skipped)[(*nskipped)++] = ids[i];
	}
}

/* Contacts the tick skipped: back into segment_pending for the next tick. */
static void
requeue_pending(int64 segment_id, int64 *ids, int n)
{
	Oid			types[2] = {INT8ARRAYOID, INT8ARRAYOID};
	Datum		args[2];
	int			ret;

	if (n == 0)
		return;
	args[0] = int8_array_datum(&segment_id, 1);
	args[1] = int8_array_datum(ids, n);
	ret = SPI_execute_with_args("INSERT INTO outreach.segment_pending (segment_ids, contact_ids) VALUES ($1, $2)",
								2, types, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "outreach: re-queueing contacts failed: %s", SPI_result_code_string(ret));
}

/*
 * Evaluate what the work asks for, in dependency order, cascading changes to dependents.
 * Deferred segments only record the contacts unless apply_deferred (the tick).
 */
static void
run_work(Work *w, int root, bool apply_deferred)
{
	for (int k = 0; k < nsegs; k++)
	{
		int			i = seg_order[k];
		SegEntry   *s = &segs[i];

		if (w->neval[i] > 0 && !s->is_static)
		{
			if (s->deferred && !(apply_deferred && i == root))
				w->pend[w->npend++] = i;
			else
			{
				if (s->diff == NULL)
					s->diff = make_diff(&i, 1);
				run_diff(s->diff, w->eval[i], w->neval[i], w, true);
			}
		}
		if (w->nchanged[i] > 1)
			w->nchanged[i] = sort_unique(w->changed[i], w->nchanged[i]);
		if (w->nchanged[i] > 0)
			for (int d = 0; d < s->ndependents; d++)
				work_add(&w->eval[s->dependents[d]], &w->neval[s->dependents[d]],
						 w->changed[i], w->nchanged[i]);
	}
	record_pending(w);
}

static bool
needs_stamp(Work *w)
{
	for (int i = 0; i < nsegs; i++)
		if (w->neval[i] > 0 && !segs[i].deferred)
			return true;
	return false;
}

static char *
affected_sql(const char *entity, int event)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	static const char *const events[] = {"insert", "update", "delete"};
	int			ret;
	bool		isnull;
	Datum		d;

	args[0] = CStringGetTextDatum(entity);
	args[1] = CStringGetTextDatum(events[event]);
	ret = SPI_execute_with_args("SELECT outreach._affected_contacts_sql($1, $2)", 2, types, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "outreach: building the link path of entity \"%s\" failed", entity);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "outreach: entity \"%s\" has no link path to contact", entity);
	return TextDatumGetCString(d);
}

/* Which column of the entity's rows holds the contact id, if that is all we need. */
static AttrNumber
direct_column(EntityEntry *e, Relation rel)
{
	Oid			types[1] = {TEXTOID};
	Datum		arg = CStringGetTextDatum(e->entity);
	int			ret;
	bool		isnull;
	Datum		d;
	AttrNumber	att;

	ret = SPI_execute_with_args("SELECT outreach._direct_contact_column($1)::text", 1, types, &arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "outreach: reading the link of entity \"%s\" failed", e->entity);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return -1;
	att = SPI_fnumber(RelationGetDescr(rel), TextDatumGetCString(d));
	if (att <= 0 || TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid != INT8OID)
		return -1;
	return att;
}

/* Append the non-null values of column att of a transition table. */
static void
collect_column(Tuplestorestate *ts, Relation rel, AttrNumber att, int64 **ids, int *n, int *cap)
{
	TupleTableSlot *slot;
	int			ptr;

	if (ts == NULL)
		return;
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, att, &isnull);

		if (isnull)
			continue;
		if (*n >= *cap)
		{
			*cap *= 2;
			*ids = repalloc(*ids, sizeof(int64) * *cap);
		}
		(*ids)[(*n)++] = DatumGetInt64(d);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * One segment's relevance predicate for an entity, copied into cache_cxt; NULL (every row
 * relevant) when it cannot be compiled any more, e.g. a value set the definition names has
 * since been emptied: the trigger must not fail the user's write for that, and evaluating
 * the segment is always correct.  Compiled in a subtransaction so such an error is undone.
 */
static SegmentDelta *
delta_copy(SegmentDelta *d)
{
	MemoryContext old = MemoryContextSwitchTo(cache_cxt);
	SegmentDelta *c = palloc(sizeof(SegmentDelta));

	c->link_column = pstrdup(d->link_column);
	c->natoms = d->natoms;
	c->atoms = palloc(sizeof(DeltaAtom) * d->natoms);
	for (int i = 0; i < d->natoms; i++)
	{
		c->atoms[i].kind = d->atoms[i].kind;
		c->atoms[i].row_pred = pstrdup(d->atoms[i].row_pred);
		c->atoms[i].term_sql = pstrdup(d->atoms[i].term_sql);
	}
	c->nform = d->nform;
	c->form = palloc(sizeof(int) * d->nform);
	memcpy(c->form, d->form, sizeof(int) * d->nform);
	MemoryContextSwitchTo(old);
	return c;
}

static char *
relevance_compile(SegEntry *s, const char *entity, bool *local, SegmentDelta **delta, char **back)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char	   *volatile result = NULL;

	*local = false;
	*delta = NULL;
	*back = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		QueryNode  *tree = segment_query_parse(s->definition);
		char	   *pred = segment_query_relevance(tree, entity, s->time_zone, local);

		char	   *bp = segment_query_back_paths(tree, entity, s->time_zone);

		if (bp != NULL)
			*back = MemoryContextStrdup(cache_cxt, bp);
		if (pred != NULL)
			result = MemoryContextStrdup(cache_cxt, pred);
		if (delta_enabled && !s->deferred && !s->is_static && s->level == 0)
		{
			SegmentDelta *d = segment_query_delta(tree, entity, s->time_zone);

			if (d != NULL)
				*delta = delta_copy(d);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		elog(DEBUG1, "outreach: segment " INT64_FORMAT " is re-evaluated on every change of %s: %s",
			 s->id, entity, edata->message);
		FreeErrorData(edata);
		result = NULL;
		*local = false;
		*delta = NULL;
		/* the back paths are missed too: the segment_failure path re-evaluates it in full */
		*back = NULL;
	}
	PG_END_TRY();
	return result;
}

/*
 * Compile, once per cache, each dependent segment's relevance predicate for this entity
 * (segment_query_relevance): a changed row can only change a segment's membership if it
 * satisfies the filter of some use of the entity in the segment's query.
 */
static void
relevance_prepare(EntityEntry *e)
{
	MemoryContext old;

	if (e->rel_ready)
		return;
	old = MemoryContextSwitchTo(cache_cxt);
	e->rel_pred = palloc0(sizeof(char *) * Max(e->nsegs, 1));
	e->rel_local = palloc0(sizeof(bool) * Max(e->nsegs, 1));
	e->delta = palloc0(sizeof(SegmentDelta *) * Max(e->nsegs, 1));
	e->datom_first = palloc0(sizeof(int) * Max(e->nsegs, 1));
	MemoryContextSwitchTo(old);
	e->nrel = 0;
	e->ndatoms = 0;
	segment_query_registry_hold(true);
	PG_TRY();
	{
	for (int k = 0; k < e->nsegs; k++)
	{
		SegEntry   *s = &segs[e->segs[k]];
		bool		local = false;
		char	   *pred;
		SegmentDelta *d = NULL;
		char	   *back = NULL;

		if (s->definition == NULL)
			continue;
		pred = relevance_compile(s, e->entity, &local, &d, &back);
		if (back != NULL)
		{
			old = MemoryContextSwitchTo(cache_cxt);
			e->back_sql = e->back_sql == NULL ? back : psprintf("%s UNION %s", e->back_sql, back);
			MemoryContextSwitchTo(old);
		}
		if (d != NULL)
		{
			e->delta[k] = d;
			e->datom_first[k] = e->ndatoms;
			e->ndatoms += d->natoms;
		}
		if (pred == NULL)
			continue;
		e->rel_pred[k] = pred;
		e->rel_local[k] = local;
		e->nrel++;
	}
	}
	PG_FINALLY();
	{
		segment_query_registry_hold(false);
	}
	PG_END_TRY();
	old = MemoryContextSwitchTo(cache_cxt);
	e->datom_k = palloc0(sizeof(int) * Max(e->ndatoms, 1));
	MemoryContextSwitchTo(old);
	for (int k = 0; k < e->nsegs; k++)
		if (e->delta[k] != NULL)
			for (int a = 0; a < e->delta[k]->natoms; a++)
				e->datom_k[e->datom_first[k] + a] = k;
	e->rel_ready = true;
}

/*
 * Whether segs[k]'s predicate is used for this event.  A predicate that reads other rows
 * (has encounter where has condition ...) tells whether a row matters only in the state it
 * is evaluated in: right for new rows (the evaluation sees the same state), not for old
 * rows, whose filter held or not before the statement, when other tables may have changed
 * in the same statement too (ON DELETE SET NULL, user triggers).  So UPDATE and DELETE
 * use only the predicates that read the row alone.
 */
static void relevance_fast_rows(EntityEntry *e, Tuplestorestate *ts, Relation rel, bool *relevant);

static inline bool
pred_used(EntityEntry *e, int k, int event)
{
	return e->rel_pred[k] != NULL && (e->rel_local[k] || event == EV_INSERT);
}

/*
 * relevant[k] for each segs[k]: whether a changed row satisfies the segment's relevance
 * predicate.  One query over the transition tables for all the predicates.
 */
static void
relevance_eval(EntityEntry *e, TriggerData *td, int event, bool *relevant)
{
	int			ret;

	bool		any = false;

	for (int k = 0; k < e->nsegs; k++)
	{
		relevant[k] = !pred_used(e, k, event);
		any |= !relevant[k];
	}
	if (!any)
		return;
	if (td != NULL && e->nfast > 0)
	{
		bool		all_fast = true;

		for (int k = 0; k < e->nsegs; k++)
		{
			bool		fast = false;

			if (!pred_used(e, k, event))
				continue;
			for (int j = 0; j < e->nfast; j++)
				if (e->fast_seg[j] == k)
					fast = true;
			all_fast &= fast;
		}
		if (all_fast)
		{
			if (event != EV_DELETE)
				relevance_fast_rows(e, td->tg_newtable, td->tg_relation, relevant);
			if (event != EV_INSERT)
				relevance_fast_rows(e, td->tg_oldtable, td->tg_relation, relevant);
			return;
		}
	}
	if (e->rel_plan[event] == NULL)
	{
		StringInfoData buf;
		bool		first = true;

		initStringInfo(&buf);
		appendStringInfoString(&buf, "SELECT ");
		for (int k = 0; k < e->nsegs; k++)
		{
			if (!pred_used(e, k, event))
				continue;
			appendStringInfo(&buf, "%s(%s)", first ? "" : ", ", e->rel_pred[k]);
			first = false;
		}
		if (event == EV_INSERT)
			appendStringInfoString(&buf, " FROM outreach_new AS tr");
		else if (event == EV_DELETE)
			appendStringInfoString(&buf, " FROM outreach_old AS tr");
		else
			appendStringInfoString(&buf, " FROM (SELECT * FROM outreach_new UNION ALL SELECT * FROM outreach_old) AS tr");
		e->rel_plan[event] = keep_plan(buf.data, 0, NULL);
	}
	ret = SPI_execute_plan(e->rel_plan[event], NULL, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "outreach: testing changed %s rows against segment filters failed: %s",
			 e->entity, SPI_result_code_string(ret));
	/* one row per changed row (no aggregation: cheaper to start for a single row) */
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		int			col = 1;

		for (int k = 0; k < e->nsegs; k++)
		{
			bool		isnull;
			Datum		d;

			if (!pred_used(e, k, event))
				continue;
			d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, col++, &isnull);
			if (!isnull && DatumGetBool(d))
				relevant[k] = true;
		}
	}
}

/*
 * The predicates that read only the row itself, compiled once into executor expressions
 * over the entity's row type, so the common single-row statement is tested without a
 * query (no executor start-up, no snapshot).  Planned as "SELECT p1, p2, ... FROM entity
 * AS tr": used only when that is a plain scan whose target list holds the predicates and
 * needs no subplan (value sets and relative dates read through subqueries: those entities
 * keep the query).
 */
static void
relevance_fast_prepare(EntityEntry *e, Relation rel)
{
	StringInfoData buf;
	MemoryContext tmp,
				old;
	List	   *raw;
	List	   *qs;
	PlannedStmt *ps;
	int			n = 0;
	int		   *map;

	e->fast_tried = true;
	e->nfast = 0;
	map = palloc(sizeof(int) * Max(e->nsegs, 1));
	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	for (int k = 0; k < e->nsegs; k++)
	{
		if (e->rel_pred[k] == NULL || !e->rel_local[k])
			continue;
		appendStringInfo(&buf, "%s(%s)::boolean", n > 0 ? ", " : "", e->rel_pred[k]);
		map[n++] = k;
	}
	if (n == 0)
		return;
	appendStringInfo(&buf, " FROM %s AS tr",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	tmp = AllocSetContextCreate(CurrentMemoryContext, "outreach relevance planning", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(tmp);
	raw = pg_parse_query(buf.data);
	if (list_length(raw) != 1)
		goto done;
	qs = pg_analyze_and_rewrite_fixedparams(linitial_node(RawStmt, raw), buf.data, NULL, 0, NULL);
	if (list_length(qs) != 1)
		goto done;
	ps = pg_plan_query(linitial_node(Query, qs), buf.data, 0, NULL);
	if (ps->subplans != NIL || ps->planTree == NULL || !IsA(ps->planTree, SeqScan) ||
		ps->planTree->initPlan != NIL || ps->planTree->qual != NIL ||
		list_length(ps->planTree->targetlist) != n || ps->rtable == NIL ||
		list_length(ps->rtable) != 1)
		goto done;
	MemoryContextSwitchTo(cache_cxt);
	e->fast_seg = palloc(sizeof(int) * n);
	e->fast_state = palloc(sizeof(ExprState *) * n);
	{
		ListCell   *lc;
		int			j = 0;

		foreach(lc, ps->planTree->targetlist)
		{
			TargetEntry *tle = lfirst_node(TargetEntry, lc);

			e->fast_seg[j] = map[j];
			e->fast_state[j] = ExecInitExpr((Expr *) copyObject(tle->expr), NULL);
			j++;
		}
	}
	e->fast_econtext = CreateStandaloneExprContext();
	e->nfast = n;
done:
	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
}

/* Evaluate the fast predicates on the rows of a transition table. */
static void
relevance_fast_rows(EntityEntry *e, Tuplestorestate *ts, Relation rel, bool *relevant)
{
	TupleTableSlot *slot;
	int			ptr;
	ExprContext *econtext = e->fast_econtext;

	if (ts == NULL)
		return;
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		all = true;

		econtext->ecxt_scantuple = slot;
		for (int j = 0; j < e->nfast; j++)
		{
			bool		isnull;
			Datum		d;

			if (relevant[e->fast_seg[j]])
				continue;
			d = ExecEvalExprSwitchContext(e->fast_state[j], econtext, &isnull);
			if (!isnull && DatumGetBool(d))
				relevant[e->fast_seg[j]] = true;
			else
				all = false;
		}
		ResetExprContext(econtext);
		if (all)
			break;
	}
	econtext->ecxt_scantuple = NULL;
	ExecDropSingleTupleTableSlot(slot);
}

/* ---------------------------------------------------------------------------------------
 * Maintenance by delta (docs/segments.md, "Maintenance by delta")
 *
 * For a segment "contact where F" whose every use of the changed entity is an atom of F
 * (has / has no / aggregate / latest directly over the entity, under and / or only; see
 * segment_query_delta), a small statement is maintained per (segment, contact) from:
 *   - the changed rows: which atoms' filters each old and new row satisfies;
 *   - what that implies: a new row satisfying "has R where P" makes it true, "has no R
 *     where P" false; an UPDATE whose old and new row of the same contact both satisfy P
 *     changes neither; an atom whose rows no changed row satisfies is unchanged;
 *   - where it implies nothing certain (a row deleted, an aggregate or latest): that atom
 *     alone re-evaluated for the contact (one query for every such atom of every segment);
 *   - the stored membership and F's monotonicity (F has no "not" above an atom): F with
 *     the known atoms substituted is decided true or false, or every changed atom is now
 *     true and the contact is a member, or every one is false and it is not: no change.
 * Whatever remains undecided is re-evaluated in full for that contact, as before.  Nothing
 * is locked or read when no atom of any segment changed for any contact.
 * ------------------------------------------------------------------------------------- */

#define DV_FALSE 0
#define DV_TRUE 1
#define DV_UNKNOWN 2

/* Evaluate F (prefix form at *pos) with known atom values (DV_*), three-valued. */
static int
delta_eval(const int *form, int *pos, const int8 *val)
{
	int			op = form[(*pos)++];

	if (op == DELTA_ATOM)
		return val[form[(*pos)++]];
	if (op == DELTA_OTHER)
		return DV_UNKNOWN;
	{
		int			n = form[(*pos)++];
		bool		is_and = (op == DELTA_AND);
		int			r = is_and ? DV_TRUE : DV_FALSE;

		for (int i = 0; i < n; i++)
		{
			int			v = delta_eval(form, pos, val);

			if (is_and)
			{
				if (v == DV_FALSE)
					r = DV_FALSE;
				else if (v == DV_UNKNOWN && r == DV_TRUE)
					r = DV_UNKNOWN;
			}
			else
			{
				if (v == DV_TRUE)
					r = DV_TRUE;
				else if (v == DV_UNKNOWN && r == DV_FALSE)
					r = DV_UNKNOWN;
			}
		}
		return r;
	}
}

static int	bsearch_id(int64 *ids, int n, int64 v);
#define ROW_NEW 1
#define ROW_OLD 2

/* The plan testing changed rows against every atom: (is_old, contact, p_0, ..., p_n-1). */
static SPIPlanPtr
delta_row_plan(EntityEntry *e, int event, const char *link)
{
	StringInfoData cols;
	StringInfoData buf;

	if (e->delta_row_plan[event] != NULL)
		return e->delta_row_plan[event];
	initStringInfo(&cols);
	appendStringInfo(&cols, "tr.%s::bigint", quote_identifier(link));
	for (int j = 0; j < e->ndatoms; j++)
	{
		int			k = e->datom_k[j];

		appendStringInfo(&cols, ", coalesce((%s)::boolean, false)",
						 e->delta[k]->atoms[j - e->datom_first[k]].row_pred);
	}
	initStringInfo(&buf);
	if (event != EV_DELETE)
		appendStringInfo(&buf, "SELECT false, %s FROM outreach_new AS tr", cols.data);
	if (event == EV_UPDATE)
		appendStringInfoString(&buf, " UNION ALL ");
	if (event != EV_INSERT)
		appendStringInfo(&buf, "SELECT true, %s FROM outreach_old AS tr", cols.data);
	e->delta_row_plan[event] = keep_plan(buf.data, 0, NULL);
	return e->delta_row_plan[event];
}

/*
 * The contact column and the atoms' filters as executor expressions over the entity's row
 * type, compiled once (as relevance_fast_prepare): a single-row statement is then tested
 * without starting a query.  Only when the planned form is a plain scan without subplans.
 */
static void
delta_fast_prepare(EntityEntry *e, Relation rel, const char *link)
{
	StringInfoData buf;
	MemoryContext tmp,
				old;
	List	   *raw;
	List	   *qs;
	PlannedStmt *ps;

	e->dfast = -1;
	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT (tr.%s)::bigint", quote_identifier(link));
	for (int j = 0; j < e->ndatoms; j++)
	{
		int			k = e->datom_k[j];

		appendStringInfo(&buf, ", coalesce((%s)::boolean, false)", e->delta[k]->atoms[j - e->datom_first[k]].row_pred);
	}
	appendStringInfo(&buf, " FROM %s AS tr",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	tmp = AllocSetContextCreate(CurrentMemoryContext, "outreach delta planning", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(tmp);
	raw = pg_parse_query(buf.data);
	if (list_length(raw) != 1)
		goto done;
	qs = pg_analyze_and_rewrite_fixedparams(linitial_node(RawStmt, raw), buf.data, NULL, 0, NULL);
	if (list_length(qs) != 1)
		goto done;
	ps = pg_plan_query(linitial_node(Query, qs), buf.data, 0, NULL);
	if (ps->subplans != NIL || ps->planTree == NULL || !IsA(ps->planTree, SeqScan) ||
		ps->planTree->initPlan != NIL || ps->planTree->qual != NIL ||
		list_length(ps->planTree->targetlist) != e->ndatoms + 1 || list_length(ps->rtable) != 1)
		goto done;
	MemoryContextSwitchTo(cache_cxt);
	e->dfast_state = palloc(sizeof(ExprState *) * (e->ndatoms + 1));
	{
		ListCell   *lc;
		int			j = 0;

		foreach(lc, ps->planTree->targetlist)
			e->dfast_state[j++] = ExecInitExpr((Expr *) copyObject(lfirst_node(TargetEntry, lc)->expr), NULL);
	}
	e->dfast_econtext = CreateStandaloneExprContext();
	e->dfast = 1;
done:
	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
}

/* delta_fast_prepare's expressions over the rows of a transition table, into bits. */
static void
delta_fast_rows(EntityEntry *e, Tuplestorestate *ts, Relation rel, uint8 flag, int64 *ids, int n, uint8 *bits)
{
	TupleTableSlot *slot;
	int			ptr;
	ExprContext *econtext = e->dfast_econtext;

	if (ts == NULL)
		return;
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		isnull;
		Datum		c;
		int			i;

		econtext->ecxt_scantuple = slot;
		c = ExecEvalExprSwitchContext(e->dfast_state[0], econtext, &isnull);
		i = isnull ? -1 : bsearch_id(ids, n, DatumGetInt64(c));
		if (i >= 0)
			for (int j = 0; j < e->ndatoms; j++)
			{
				Datum		d = ExecEvalExprSwitchContext(e->dfast_state[1 + j], econtext, &isnull);

				if (!isnull && DatumGetBool(d))
					bits[(Size) i * e->ndatoms + j] |= flag;
			}
		ResetExprContext(econtext);
	}
	econtext->ecxt_scantuple = NULL;
	ExecDropSingleTupleTableSlot(slot);
}

/* The kept plan evaluating the atoms js (flat, sorted) for the contacts in $1. */
static SPIPlanPtr
delta_term_plan(EntityEntry *e, int *js, int nj)
{
	StringInfoData key;
	StringInfoData buf;
	ListCell   *lc;
	TermPlan   *tp;
	MemoryContext old;
	Oid			types[1] = {INT8ARRAYOID};

	initStringInfo(&key);
	for (int i = 0; i < nj; i++)
		appendStringInfo(&key, "%s%d", i > 0 ? "," : "", js[i]);
	foreach(lc, e->term_plans)
	{
		tp = lfirst(lc);
		if (strcmp(tp->key, key.data) == 0)
			return tp->plan;
	}
	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT c0.id");
	for (int i = 0; i < nj; i++)
	{
		int			k = e->datom_k[js[i]];

		appendStringInfo(&buf, ", coalesce((%s), false)", e->delta[k]->atoms[js[i] - e->datom_first[k]].term_sql);
	}
	appendStringInfoString(&buf, " FROM outreach.contact AS c0 WHERE c0.id OPERATOR(pg_catalog.=) ANY ($1::bigint[])");
	old = MemoryContextSwitchTo(cache_cxt);
	tp = palloc0(sizeof(TermPlan));
	tp->key = pstrdup(key.data);
	MemoryContextSwitchTo(old);
	tp->plan = keep_plan(buf.data, 1, types);
	if (list_length(e->term_plans) < MAX_SUBSET_PLANS)
	{
		old = MemoryContextSwitchTo(cache_cxt);
		e->term_plans = lappend(e->term_plans, tp);
		MemoryContextSwitchTo(old);
	}
	return tp->plan;
}

static int
bsearch_id(int64 *ids, int n, int64 v)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (ids[mid] == v)
			return mid;
		if (ids[mid] < v)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}


/*
 * Maintain the segments use[k] for the contacts ids (sorted) by delta: the decided changes
 * go to w's buffer; a segment with a contact it cannot decide is marked in fallback[k]
 * (none of its changes are buffered: the caller re-evaluates it).  stamped: the caller has
 * locked the contacts already.  Returns whether it locked them all (else only those with a
 * changed atom, or none).
 */
static bool
delta_maintain(EntityEntry *e, TriggerData *td, int event, bool *use, int64 *ids, int n, Work *w, bool stamped,
			   bool *fallback)
{
	SPIPlanPtr	plan;
	int			ret;
	uint8	   *bits;			/* n x ndatoms */
	int8	   *val;			/* n x ndatoms: DV_* after the statement, or -1 untouched/unchanged */
	bool	   *active;			/* n x nsegs */
	int			nactive = 0;
	const char *link = NULL;
	int64	   *acts;
	int			nacts = 0;
	Pair	   *have;
	int			nhave;
	int8	   *dec;			/* nacts x nsegs: -1 nothing to do, else DV_TRUE / DV_FALSE wanted */
	bool	   *termpair;		/* nacts x nsegs: decided once its deleted rows' atoms are re-evaluated */
	bool	   *need2;			/* per flat atom: re-evaluated */

	for (int k = 0; k < e->nsegs; k++)
		if (use[k])
			link = e->delta[k]->link_column;
	if (link == NULL)
		return false;
	bits = palloc0((Size) n * Max(e->ndatoms, 1));
	if (e->dfast == 0)
		delta_fast_prepare(e, td->tg_relation, link);
	if (e->dfast > 0)
	{
		if (event != EV_DELETE)
			delta_fast_rows(e, td->tg_newtable, td->tg_relation, ROW_NEW, ids, n, bits);
		if (event != EV_INSERT)
			delta_fast_rows(e, td->tg_oldtable, td->tg_relation, ROW_OLD, ids, n, bits);
		SPI_processed = 0;
		SPI_tuptable = NULL;
	}
	else
	{
		plan = delta_row_plan(e, event, link);
		ret = SPI_execute_plan(plan, NULL, NULL, true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "outreach: testing changed %s rows against segment atoms failed: %s",
				 e->entity, SPI_result_code_string(ret));
	}
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		is_old = DatumGetBool(SPI_getbinval(tup, td, 1, &isnull));
		Datum		c = SPI_getbinval(tup, td, 2, &isnull);
		int			i;

		if (isnull)
			continue;
		i = bsearch_id(ids, n, DatumGetInt64(c));
		if (i < 0)
			continue;
		for (int j = 0; j < e->ndatoms; j++)
			if (DatumGetBool(SPI_getbinval(tup, td, 3 + j, &isnull)))
				bits[(Size) i * e->ndatoms + j] |= is_old ? ROW_OLD : ROW_NEW;
	}
	if (SPI_tuptable != NULL)
		SPI_freetuptable(SPI_tuptable);

	/* what the rows tell of each atom, per contact; which pairs may change */
	val = palloc((Size) n * Max(e->ndatoms, 1));
	need2 = palloc0(sizeof(bool) * Max(e->ndatoms, 1));
	active = palloc0(sizeof(bool) * (Size) n * e->nsegs);
	for (int i = 0; i < n; i++)
	{
		bool		any = false;

		for (int k = 0; k < e->nsegs; k++)
		{
			bool		changed = false;

			if (use[k])
				for (int a = 0; a < e->delta[k]->natoms; a++)
					val[(Size) i * e->ndatoms + e->datom_first[k] + a] = -1;

			if (!use[k])
				continue;
			for (int a = 0; a < e->delta[k]->natoms; a++)
			{
				int			j = e->datom_first[k] + a;
				uint8		b = bits[(Size) i * e->ndatoms + j];
				DeltaAtomKind kind = e->delta[k]->atoms[a].kind;
				int8	   *v = &val[(Size) i * e->ndatoms + j];

				*v = -1;
				if (b == 0)
					continue;	/* no changed row of this contact satisfies its filter */
				if (kind != DELTA_TERM && b == (ROW_NEW | ROW_OLD))
					continue;	/* satisfied before and after by a row of the contact */
				changed = true;
				if (kind == DELTA_HAS && b == ROW_NEW)
					*v = DV_TRUE;
				else if (kind == DELTA_HAS_NO && b == ROW_NEW)
					*v = DV_FALSE;
				else
					*v = DV_UNKNOWN;	/* decided below, by the atom or the segment */
			}
			if (changed)
			{
				active[(Size) i * e->nsegs + k] = true;
				nactive++;
				any = true;
			}
		}
		(void) any;
	}
	pfree(bits);
	if (nactive == 0)
		return false;			/* no atom changed for any contact: nothing to lock or read */

	/* the active contacts, in id order, with their rows of val and active moved up */
	acts = palloc(sizeof(int64) * n);
	for (int i = 0; i < n; i++)
	{
		bool		any = false;

		for (int k = 0; k < e->nsegs; k++)
			any |= active[(Size) i * e->nsegs + k];
		if (!any)
			continue;
		if (nacts != i)
		{
			memcpy(&val[(Size) nacts * e->ndatoms], &val[(Size) i * e->ndatoms], e->ndatoms);
			memcpy(&active[(Size) nacts * e->nsegs], &active[(Size) i * e->nsegs], sizeof(bool) * e->nsegs);
		}
		acts[nacts++] = ids[i];
	}
	if (!stamped)
		stamp_contacts(acts, nacts);

	have = have_pairs(int8_array_datum(acts, nacts), &nhave);
	dec = palloc(sizeof(int8) * (Size) nacts * e->nsegs);
	memset(dec, -1, sizeof(int8) * (Size) nacts * e->nsegs);
	termpair = palloc0(sizeof(bool) * (Size) nacts * e->nsegs);

	/*
	 * First without re-evaluating any atom: decided by the known atoms, or no change by
	 * monotonicity; where only the value of a deleted row's atom could decide, that atom is
	 * re-evaluated (below); otherwise the segment is re-evaluated in full for the contact
	 * (one query either way: re-evaluating the atom first would cost two).
	 */
	for (int pass = 0; pass < 2; pass++)
	{
		bool		any_term = false;

		for (int i = 0; i < nacts; i++)
		{
			for (int k = 0; k < e->nsegs; k++)
			{
				SegmentDelta *d = e->delta[k];
				int8	   *v = &val[(Size) i * e->ndatoms + e->datom_first[k]];
				int8	   *known;
				int			pos = 0;
				int			f;
				bool		member;
				bool		all_up = true,
							all_down = true;
				Pair		key;
				Size		ik = (Size) i * e->nsegs + k;

				if (!active[ik] || fallback[k] || dec[ik] >= 0)
					continue;
				if (pass == 1 && !termpair[ik])
					continue;
				known = palloc(d->natoms);
				for (int a = 0; a < d->natoms; a++)
				{
					known[a] = v[a] < 0 ? DV_UNKNOWN : v[a];
					if (v[a] == DV_TRUE)
						all_down = false;
					else if (v[a] == DV_FALSE)
						all_up = false;
					else if (v[a] == DV_UNKNOWN)
					{
						/* a deleted row: has can only have become false, has no only true */
						if (d->atoms[a].kind == DELTA_HAS)
							all_up = false;
						else if (d->atoms[a].kind == DELTA_HAS_NO)
							all_down = false;
						else
							all_up = all_down = false;
					}
				}
				f = delta_eval(d->form, &pos, known);
				key.s = segs[e->segs[k]].id;
				key.c = acts[i];
				member = nhave > 0 && bsearch(&key, have, nhave, sizeof(Pair), cmp_pair) != NULL;
				if (f != DV_UNKNOWN)
				{
					if ((f == DV_TRUE) != member)
						dec[ik] = (int8) f;
					else
						active[ik] = false;
				}
				else if ((all_up && member) || (all_down && !member))
					active[ik] = false;
				else if (pass == 0)
				{
					/* would the deleted rows' atoms, once known, decide? */
					bool		helps = false;

					pos = 0;
					for (int a = 0; a < d->natoms; a++)
						if (v[a] == DV_UNKNOWN)
						{
							known[a] = d->atoms[a].kind == DELTA_HAS ? DV_FALSE : DV_TRUE;
							helps = true;
						}
					if (helps && delta_eval(d->form, &pos, known) != DV_UNKNOWN)
					{
						termpair[ik] = true;
						any_term = true;
						for (int a = 0; a < d->natoms; a++)
							if (v[a] == DV_UNKNOWN)
								need2[e->datom_first[k] + a] = true;
					}
					else
						fallback[k] = true;
				}
				else
					fallback[k] = true;
				pfree(known);
			}
		}
		if (pass == 1 || !any_term)
			break;

		/* re-evaluate the deleted rows' atoms where that decides (one query for all) */
		{
			int		   *js = palloc(sizeof(int) * Max(e->ndatoms, 1));
			int			nj = 0;
			Datum		arg = int8_array_datum(acts, nacts);

			for (int j = 0; j < e->ndatoms; j++)
				if (need2[j])
					js[nj++] = j;
			ret = SPI_execute_plan(delta_term_plan(e, js, nj), &arg, NULL, false, 0);
			if (ret != SPI_OK_SELECT)
				elog(ERROR, "outreach: evaluating segment atoms failed: %s", SPI_result_code_string(ret));
			for (uint64 r = 0; r < SPI_processed; r++)
			{
				bool		isnull;
				HeapTuple	tup = SPI_tuptable->vals[r];
				TupleDesc	td = SPI_tuptable->tupdesc;
				int			i = bsearch_id(acts, nacts, DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull)));

				if (i < 0)
					continue;
				for (int q = 0; q < nj; q++)
				{
					int8	   *v = &val[(Size) i * e->ndatoms + js[q]];

					if (*v == DV_UNKNOWN)
						*v = DatumGetBool(SPI_getbinval(tup, td, 2 + q, &isnull)) ? DV_TRUE : DV_FALSE;
				}
			}
			SPI_freetuptable(SPI_tuptable);
			pfree(DatumGetPointer(arg));
			pfree(js);
		}
	}
	for (int i = 0; i < nacts; i++)
		for (int k = 0; k < e->nsegs; k++)
			if (dec[(Size) i * e->nsegs + k] >= 0 && !fallback[k])
				out_add(w, segs[e->segs[k]].id, acts[i], dec[(Size) i * e->nsegs + k] == DV_TRUE);
	return nacts == n || stamped;
}

/*
 * The contacts that changed rows concern through nested uses of the entity (e.g. the
 * patients whose conditions point at the encounter of a changed condition), appended to
 * ids (unsorted).
 */
static int64 *
add_back_path_contacts(EntityEntry *e, TriggerData *td, int event, int64 *ids, int *n, bool *registered)
{
	int			ret;
	int			nb;
	int64	   *b;
	bool		isnull;
	Datum		d;
	int64	   *out;

	if (!*registered)
	{
		if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
			elog(ERROR, "outreach: SPI_register_trigger_data failed");
		*registered = true;
	}
	if (e->back_plan[event] == NULL)
	{
		StringInfoData buf;
		StringInfoData oldsql;
		const char *p;

		/* the same paths over the old rows: outreach_new AS tr -> outreach_old AS tr */
		initStringInfo(&oldsql);
		for (p = e->back_sql; *p; )
		{
			if (strncmp(p, "outreach_new AS tr", 18) == 0)
			{
				appendStringInfoString(&oldsql, "outreach_old AS tr");
				p += 18;
			}
			else
				appendStringInfoChar(&oldsql, *p++);
		}
		initStringInfo(&buf);
		appendStringInfoString(&buf, "SELECT pg_catalog.array_agg(DISTINCT x.contact_id) FROM (");
		if (event == EV_INSERT)
			appendStringInfoString(&buf, e->back_sql);
		else if (event == EV_DELETE)
			appendStringInfoString(&buf, oldsql.data);
		else
			appendStringInfo(&buf, "%s UNION %s", e->back_sql, oldsql.data);
		appendStringInfoString(&buf, ") AS x");
		e->back_plan[event] = keep_plan(buf.data, 0, NULL);
	}
	ret = SPI_execute_plan(e->back_plan[event], NULL, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "outreach: finding the contacts of changed %s rows through nested relations failed: %s",
			 e->entity, SPI_result_code_string(ret));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return ids;
	b = datum_int8_array(d, &nb);
	out = palloc(sizeof(int64) * Max(*n + nb, 1));
	if (*n > 0)
		memcpy(out, ids, sizeof(int64) * *n);
	memcpy(out + *n, b, sizeof(int64) * nb);
	*n += nb;
	return out;
}

/* The kept diff plan of a subset of the entity's base segments (indexes into segs). */
static SubsetPlan *
subset_plan(EntityEntry *e, int *ixs, int n)
{
	StringInfoData key;
	ListCell   *lc;
	SubsetPlan *sp;
	MemoryContext old;

	initStringInfo(&key);
	for (int k = 0; k < n; k++)
		appendStringInfo(&key, "%s%d", k > 0 ? "," : "", ixs[k]);
	foreach(lc, e->subset_plans)
	{
		sp = lfirst(lc);
		if (strcmp(sp->key, key.data) == 0)
			return sp;
	}
	old = MemoryContextSwitchTo(cache_cxt);
	sp = palloc0(sizeof(SubsetPlan));
	sp->key = pstrdup(key.data);
	MemoryContextSwitchTo(old);
	sp->dp = make_diff(ixs, n);
	if (list_length(e->subset_plans) < MAX_SUBSET_PLANS)
	{
		old = MemoryContextSwitchTo(cache_cxt);
		e->subset_plans = lappend(e->subset_plans, sp);
		MemoryContextSwitchTo(old);
	}
	return sp;
}

static void
membership_trigger_body(TriggerData *td)
{
	Oid			relid = RelationGetRelid(td->tg_relation);
	EntityEntry *e;
	int			event;
	int			ret;
	int			n;
	int64	   *ids;
	bool		isnull;
	Work	   *w;
	bool	   *relevant;
	bool		registered = false;
	bool		any;
	bool		test_first = true;
	int		   *base;
	int			nbase = 0;
	bool		stamped = false;
	bool	   *use_delta = NULL;
	bool		any_delta = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "outreach: SPI_connect failed");
	ensure_cache();
	e = entity_hash ? hash_search(entity_hash, &relid, HASH_FIND, NULL) : NULL;
	if (e == NULL || e->nsegs == 0)
	{
		SPI_finish();
		return;
	}

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		Oid			types[1] = {TEXTOID};
		Datum		arg = CStringGetTextDatum(e->entity);

		ret = SPI_execute_with_args("SELECT outreach._entity_truncated($1)", 1, types, &arg, NULL, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "outreach: re-evaluating segments after TRUNCATE failed: %s", SPI_result_code_string(ret));
		SPI_finish();
		return;
	}
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		event = EV_INSERT;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		event = EV_UPDATE;
	else
		event = EV_DELETE;

	relevant = palloc(sizeof(bool) * Max(e->nsegs, 1));
	if (only_segment >= 0)
	{
		/* after a failure: this segment alone, every changed row relevant (no predicates) */
		for (int k = 0; k < e->nsegs; k++)
			relevant[k] = (segs[e->segs[k]].id == only_segment);
		test_first = false;
		relevance_prepare(e);	/* for the back paths (guarded per segment) */
	}
	else
	{
		relevance_prepare(e);
		if (!e->fast_tried)
			relevance_fast_prepare(e, td->tg_relation);
	}
	if (only_segment < 0 && e->nrel > 0)
	{
		if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
			elog(ERROR, "outreach: SPI_register_trigger_data failed");
		registered = true;
	}
	for (int k = 0; k < e->nsegs && only_segment < 0; k++)
		if (pred_used(e, k, event) && !e->rel_local[k])
			test_first = false;
	if (test_first)
	{
		/*
		 * The predicates read only the changed rows themselves: test them first, and when
		 * no segment is concerned, skip finding and locking the contacts altogether.
		 */
		relevance_eval(e, td, event, relevant);
		any = false;
		for (int k = 0; k < e->nsegs; k++)
			any |= relevant[k];
		if (!any)
		{
			SPI_finish();
			return;
		}
	}

	if (e->direct_attnum == 0)
		e->direct_attnum = direct_column(e, td->tg_relation);
	if (e->direct_attnum > 0)
	{
		/* the contact id is a column of the changed rows: read the transition tables */
		int			cap = 16;

		n = 0;
		isnull = false;
		ids = palloc(sizeof(int64) * cap);
		if (event != EV_DELETE)
			collect_column(td->tg_newtable, td->tg_relation, e->direct_attnum, &ids, &n, &cap);
		if (event != EV_INSERT)
			collect_column(td->tg_oldtable, td->tg_relation, e->direct_attnum, &ids, &n, &cap);
	}
	else
	{
		if (!registered && SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
			elog(ERROR, "outreach: SPI_register_trigger_data failed");
		registered = true;
		if (e->affected_plan[event] == NULL)
			e->affected_plan[event] = keep_plan(affected_sql(e->entity, event), 0, NULL);
		ret = SPI_execute_plan(e->affected_plan[event], NULL, NULL, true, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "outreach: finding the contacts of changed %s rows failed: %s", e->entity, SPI_result_code_string(ret));
		ids = datum_int8_array(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull), &n);
	}
	if (isnull)
		n = 0;
	if (e->back_sql != NULL)
		ids = add_back_path_contacts(e, td, event, ids, &n, &registered);
	if (n == 0)
	{
		SPI_finish();
		return;
	}
	n = sort_unique(ids, n);

	if (!test_first)
	{
		/*
		 * Some predicate reads other rows (a nested relation): lock the contacts first, so
		 * that the test sees what a concurrent writer of the same contacts committed, as
		 * the evaluation does.
		 */
		bool		stamp = false;

		for (int k = 0; k < e->nsegs; k++)
			if (!segs[e->segs[k]].deferred)
				stamp = true;
		if (stamp)
		{
			stamp_contacts(ids, n);
			stamped = true;
		}
		if (only_segment < 0)
			relevance_eval(e, td, event, relevant);
	}

	w = work_new();
	base = palloc(sizeof(int) * Max(e->nbase, 1));
	use_delta = palloc0(sizeof(bool) * Max(e->nsegs, 1));
	if (only_segment < 0 && delta_enabled && e->delta != NULL && e->ndatoms > 0 &&
		n <= ONE_SHOT_THRESHOLD && e->direct_attnum > 0)
	{
		const char *col = NameStr(TupleDescAttr(RelationGetDescr(td->tg_relation), e->direct_attnum - 1)->attname);

		for (int k = 0; k < e->nsegs; k++)
			if (relevant[k] && e->delta[k] != NULL && strcmp(e->delta[k]->link_column, col) == 0)
			{
				use_delta[k] = true;
				any_delta = true;
			}
		if (any_delta && !registered)
		{
			if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
				elog(ERROR, "outreach: SPI_register_trigger_data failed");
			registered = true;
		}
	}
	for (int k = 0; k < e->nsegs; k++)
	{
		int			i = e->segs[k];
		bool		is_base = false;

		if (!relevant[k] || use_delta[k])
			continue;
		for (int b = 0; b < e->nbase; b++)
			if (e->base[b] == i)
				is_base = true;
		if (is_base)
			base[nbase++] = i;
		else
			work_add(&w->eval[i], &w->neval[i], ids, n);
	}
	if (test_first && (nbase > 0 || needs_stamp(w)))
	{
		stamp_contacts(ids, n);
		stamped = true;
	}
	if (any_delta)
	{
		bool	   *fallback = palloc0(sizeof(bool) * e->nsegs);
		bool		all_stamped = delta_maintain(e, td, event, use_delta, ids, n, w, stamped, fallback);
		bool		any_fallback = false;

		for (int k = 0; k < e->nsegs; k++)
			any_fallback |= fallback[k];
		if (any_fallback)
		{
			/*
			 * What delta could not decide: those segments re-evaluated with the others, in
			 * one plan and one write.
			 */
			nbase = 0;
			for (int b = 0; b < e->nbase; b++)
			{
				int			k;

				for (k = 0; k < e->nsegs; k++)
					if (e->segs[k] == e->base[b])
						break;
				if (k < e->nsegs && relevant[k] && (!use_delta[k] || fallback[k]))
					base[nbase++] = e->base[b];
			}
			if (!all_stamped)
				stamp_contacts(ids, n);
		}
	}
	if (nbase == 0)
		out_flush(w);
	if (nbase > 0)
	{
		if (nbase == e->nbase)
		{
			if (e->base_diff == NULL)
				e->base_diff = make_diff(e->base, e->nbase);
			run_diff(e->base_diff, ids, n, w, true);
		}
		else
		{
			SubsetPlan *sp = subset_plan(e, base, nbase);

			run_diff(sp->dp, ids, n, w, true);
		}
	}
	run_work(w, -1, false);
	SPI_finish();
}

/* Run the trigger's maintenance in a subtransaction; false (and *failed) on an isolated error. */
static pg_noinline bool
body_guarded(TriggerData *td, ErrorData **failed)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		membership_trigger_body(td);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* the subtransaction goes first, whatever happens next (as PL/pgSQL does) */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (!isolated_error(edata->sqlerrcode) || !failure_table_exists())
			ReThrowError(edata);
		cache_valid = false;	/* the error may have come from a half-built cache */
		*failed = edata;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* The live, dynamic segments reading the entity registered on relid (from the catalog). */
static pg_noinline List *
live_segments_of(Oid relid)
{
	List	   *out = NIL;
	Oid			types[1] = {OIDOID};
	Datum		arg = ObjectIdGetDatum(relid);
	int			ret;
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "outreach: SPI_connect failed");
	ret = SPI_execute_with_args("SELECT s.id FROM outreach.segment s JOIN outreach.segment_entity se ON se.segment_id = s.id "
								"JOIN outreach.entity e ON e.name = se.entity "
								"WHERE e.relation = $1 AND s.status = 'live' AND s.kind <> 'static' "
								"AND NOT EXISTS (SELECT 1 FROM outreach.segment_failure f WHERE f.segment_id = s.id) ORDER BY s.id",
								1, types, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "outreach: reading live segments failed: %s", SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(outer);
		int64	   *id = palloc(sizeof(int64));

		*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		out = lappend(out, id);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return out;
}

/* body_guarded for one segment alone */
static pg_noinline bool
body_guarded_only(TriggerData *td, int64 segment_id, ErrorData **failed)
{
	volatile bool ok = false;

	only_segment = segment_id;
	PG_TRY();
	{
		ok = body_guarded(td, failed);
	}
	PG_FINALLY();
	{
		only_segment = -1;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Some segment's maintenance failed (its data, or its definition against the catalog).
 * The write goes on: each live segment on this table is maintained alone, and those that
 * fail again are recorded as failed and left out of maintenance.
 */
static void
maintain_after_failure(TriggerData *td, ErrorData *failed)
{
	List	   *ids = NIL;
	ListCell   *lc;
	Oid			relid = RelationGetRelid(td->tg_relation);
	EntityEntry *e = (entity_hash && cache_valid) ? hash_search(entity_hash, &relid, HASH_FIND, NULL) : NULL;

	if (e != NULL)
	{
		for (int k = 0; k < e->nsegs; k++)
			if (!segs[e->segs[k]].is_static)
			{
				int64	   *id = palloc(sizeof(int64));

				*id = segs[e->segs[k]].id;
				ids = lappend(ids, id);
			}
	}
	else
		ids = live_segments_of(relid);
	foreach(lc, ids)
	{
		ErrorData  *again = NULL;

		if (!body_guarded_only(td, *(int64 *) lfirst(lc), &again))
			record_failure(*(int64 *) lfirst(lc), again);
	}
	if (ids == NIL)
		ereport(WARNING,
				(errcode(failed->sqlerrcode),
				 errmsg("segment maintenance failed: %s", failed->message ? failed->message : "unknown error")));
	cache_valid = false;
	if (OidIsValid(segment_relid))
		CacheInvalidateRelcacheByRelid(segment_relid);
}

Datum
outreach_membership_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("outreach._membership_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) || !TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("outreach._membership_trigger() must be an AFTER ... FOR EACH STATEMENT trigger"),
				 errhint("Register the table with outreach.register_entity(), which attaches the triggers.")));

	/* cheap exit: a valid cache that knows no live segment on this table */
	if (cache_valid && segs != NULL && entity_hash != NULL)
	{
		Oid			relid = RelationGetRelid(td->tg_relation);

		if (hash_search(entity_hash, &relid, HASH_FIND, NULL) == NULL)
			return PointerGetDatum(NULL);
	}

	depth++;
	PG_TRY();
	{
		ErrorData  *failed = NULL;

		if (!body_guarded(td, &failed))
			maintain_after_failure(td, failed);
	}
	PG_FINALLY();
	{
		depth--;
	}
	PG_END_TRY();
	return PointerGetDatum(NULL);
}

/*
 * _apply_segment(segment_id, contact_ids) -> number of membership changes (with cascades).
 * Re-evaluates one live segment for the given contacts, deferred or not (the tick and
 * definition changes use it), and cascades to the segments built on it.
 */
static Datum
apply_or_cascade(FunctionCallInfo fcinfo, bool evaluate, bool nowait)
{
	int64		sid;
	int			n;
	int64	   *ids;
	int			ix;
	Work	   *w;
	int64		total = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("segment id must not be NULL"),
				 errdetail("outreach._apply_segment() and outreach._cascade_segment() re-evaluate one live segment.")));
	sid = PG_GETARG_INT64(0);
	if (PG_ARGISNULL(1))
		PG_RETURN_INT64(0);
	ids = datum_int8_array(PG_GETARG_DATUM(1), &n);
	n = sort_unique(ids, n);
	if (n == 0)
		PG_RETURN_INT64(0);

	depth++;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "outreach: SPI_connect failed");
		ensure_cache();
		ix = seg_index(sid);
		if (ix < 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("segment " INT64_FORMAT " is not live", sid),
					 errdetail("Only live segments have members that are maintained.")));
		if (nowait)
		{
			int64	   *locked,
					   *skipped;
			int			nlocked,
						nskipped;

			stamp_contacts_nowait(ids, n, &locked, &nlocked, &skipped, &nskipped);
			requeue_pending(sid, skipped, nskipped);
			ids = locked;
			n = nlocked;
		}
		else
			stamp_contacts(ids, n);
		w = work_new();
		if (evaluate)
			work_add(&w->eval[ix], &w->neval[ix], ids, n);
		else
			work_add(&w->changed[ix], &w->nchanged[ix], ids, n);
		run_work(w, ix, true);
		total = w->total_changes;
		SPI_finish();
	}
	PG_FINALLY();
	{
		depth--;
	}
	PG_END_TRY();
	PG_RETURN_INT64(total);
}

Datum
outreach_apply_segment(PG_FUNCTION_ARGS)
{
	return apply_or_cascade(fcinfo, true, false);
}

/*
 * _apply_segment(segment_id, contact_ids, nowait): as _apply_segment, for the tick: the
 * contacts a writer is maintaining right now are skipped and queued for the next tick.
 */
Datum
outreach_apply_segment_nowait(PG_FUNCTION_ARGS)
{
	return apply_or_cascade(fcinfo, true, !PG_ARGISNULL(2) && PG_GETARG_BOOL(2));
}

/* _cascade_segment(segment_id, changed_contact_ids): members changed by hand (static). */
Datum
outreach_cascade_segment(PG_FUNCTION_ARGS)
{
	return apply_or_cascade(fcinfo, false, false);
}

/* _lock_contacts(ids): the per-contact serialisation, for SQL callers (add_members). */
Datum
outreach_lock_contacts(PG_FUNCTION_ARGS)
{
	int			n;
	int64	   *ids;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	ids = datum_int8_array(PG_GETARG_DATUM(0), &n);
	n = sort_unique(ids, n);
	if (n == 0)
		PG_RETURN_VOID();
	depth++;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "outreach: SPI_connect failed");
		ensure_cache();
		stamp_contacts(ids, n);
		SPI_finish();
	}
	PG_FINALLY();
	{
		depth--;
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

/* Tell every backend (this one at the next command) to reload the live segments. */
Datum
outreach_membership_invalidate(PG_FUNCTION_ARGS)
{
	Oid			relid = get_relname_relid("segment", get_namespace_oid("outreach", false));

	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
	cache_valid = false;
	PG_RETURN_VOID();
}

/*
 * _apply_pending() -> {contacts, changes}: the tick's one pass over the deferred backlog.
 * Takes every segment_pending row, groups the live dynamic segments that read no other
 * segment by the contacts recorded for them (a statement records one row naming all the
 * deferred segments it concerned), and re-evaluates each group in one plan for its contacts,
 * never waiting for a writer (the contacts a writer holds are queued again).  Rows naming
 * other segments (compound ones, failed ones, ones marked for a full re-evaluation, ones no
 * longer live) are put back for the tick's per-segment loop.  An error rolls the whole pass
 * back (the caller then applies the rows one segment at a time and records the failing one).
 */
typedef struct PendingGroup
{
	char	   *key;			/* the segment indexes */
	int		   *ixs;
	int			nix;
	int64	   *ids;
	int			n;
	int			cap;
} PendingGroup;

Datum
outreach_apply_pending(PG_FUNCTION_ARGS)
{
	volatile int64 total_contacts = 0;
	volatile int64 total_changes = 0;
	Datum		result[2];

	depth++;
	PG_TRY();
	{
		int			ret;
		bool	   *blocked;
		List	   *groups = NIL;
		ListCell   *lc;
		SPITupleTable *rows;
		uint64		nrows;
		Oid			requeue_types[2] = {INT8ARRAYOID, INT8ARRAYOID};

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "outreach: SPI_connect failed");
		ensure_cache();
		blocked = palloc(sizeof(bool) * Max(nsegs, 1));
		for (int i = 0; i < nsegs; i++)
			blocked[i] = true;

		/*
		 * The live segments with pending rows, FOR KEY SHARE before the rows (the order of
		 * the per-segment loop): a segment dropped meanwhile is waited for, and the drop's
		 * deletion of its pending rows never waits for us while we wait for it.
		 */
		ret = SPI_execute("SELECT x.id FROM outreach.segment x "
						  "WHERE x.status = 'live' AND x.kind <> 'static' AND NOT x.pending_full "
						  "AND NOT EXISTS (SELECT 1 FROM outreach.segment_failure f WHERE f.segment_id = x.id) "
						  "AND EXISTS (SELECT 1 FROM outreach.segment_pending p WHERE p.segment_ids @> ARRAY[x.id]) "
						  "ORDER BY x.id FOR KEY SHARE OF x", false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "outreach: reading segments failed: %s", SPI_result_code_string(ret));
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int			ix = seg_index(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)));

			if (ix >= 0)
				blocked[ix] = false;
		}
		/* the rows, locked in id order as _pending_take does (one order: takers never deadlock) */
		ret = SPI_execute("WITH l AS (SELECT p.id FROM outreach.segment_pending p ORDER BY p.id FOR UPDATE) "
						  "DELETE FROM outreach.segment_pending p USING l WHERE p.id = l.id "
						  "RETURNING p.segment_ids, p.contact_ids", false, 0);
		if (ret != SPI_OK_DELETE_RETURNING)
			elog(ERROR, "outreach: taking the deferred changes failed: %s", SPI_result_code_string(ret));
		rows = SPI_tuptable;
		nrows = SPI_processed;
		for (uint64 r = 0; r < nrows; r++)
		{
			bool		isnull;
			int			ns,
						nc;
			int64	   *sids = datum_int8_array(SPI_getbinval(rows->vals[r], rows->tupdesc, 1, &isnull), &ns);
			int64	   *cids;
			int64	   *others = palloc(sizeof(int64) * Max(ns, 1));
			int		   *ixs = palloc(sizeof(int) * Max(ns, 1));
			int			nothers = 0,
						nix = 0;
			StringInfoData key;
			PendingGroup *g = NULL;

			if (isnull)
				continue;
			cids = datum_int8_array(SPI_getbinval(rows->vals[r], rows->tupdesc, 2, &isnull), &nc);
			if (isnull || nc == 0)
				continue;
			ns = sort_unique(sids, ns);
			for (int k = 0; k < ns; k++)
			{
				int			ix = seg_index(sids[k]);

				if (ix < 0 || segs[ix].is_static)
					continue;	/* no longer live: nothing to maintain */
				if (segs[ix].level == 0 && !blocked[ix])
					ixs[nix++] = ix;
				else
					others[nothers++] = sids[k];
			}
			if (nothers > 0)
			{
				/* back for the per-segment loop (which skips segments no longer live) */
				Datum		args[2];

				args[0] = int8_array_datum(others, nothers);
				args[1] = int8_array_datum(cids, nc);
				ret = SPI_execute_with_args("INSERT INTO outreach.segment_pending (segment_ids, contact_ids) VALUES ($1, $2)",
											2, requeue_types, args, NULL, false, 0);
				if (ret != SPI_OK_INSERT)
					elog(ERROR, "outreach: re-queueing deferred changes failed: %s", SPI_result_code_string(ret));
			}
			if (nix == 0)
				continue;
			initStringInfo(&key);
			for (int k = 0; k < nix; k++)
				appendStringInfo(&key, "%d,", ixs[k]);
			foreach(lc, groups)
			{
				PendingGroup *x = lfirst(lc);

				if (strcmp(x->key, key.data) == 0)
					g = x;
			}
			if (g == NULL)
			{
				g = palloc0(sizeof(PendingGroup));
				g->key = key.data;
				g->ixs = ixs;
				g->nix = nix;
				g->cap = Max(nc, 16);
				g->ids = palloc(sizeof(int64) * g->cap);
				groups = lappend(groups, g);
			}
			if (g->n + nc > g->cap)
			{
				g->cap = Max(g->cap * 2, g->n + nc);
				g->ids = repalloc_huge(g->ids, sizeof(int64) * g->cap);
			}
			memcpy(g->ids + g->n, cids, sizeof(int64) * nc);
			g->n += nc;
		}
		foreach(lc, groups)
		{
			PendingGroup *g = lfirst(lc);
			int64	   *locked,
					   *skipped;
			int			nlocked,
						nskipped;
			Work	   *w;
			DiffPlan   *dp;

			g->n = sort_unique(g->ids, g->n);
			stamp_contacts_nowait(g->ids, g->n, &locked, &nlocked, &skipped, &nskipped);
			if (nskipped > 0)
			{
				Datum		args[2];
				int64	   *sids = palloc(sizeof(int64) * g->nix);

				for (int k = 0; k < g->nix; k++)
					sids[k] = segs[g->ixs[k]].id;
				args[0] = int8_array_datum(sids, g->nix);
				args[1] = int8_array_datum(skipped, nskipped);
				ret = SPI_execute_with_args("INSERT INTO outreach.segment_pending (segment_ids, contact_ids) VALUES ($1, $2)",
											2, requeue_types, args, NULL, false, 0);
				if (ret != SPI_OK_INSERT)
					elog(ERROR, "outreach: re-queueing contacts failed: %s", SPI_result_code_string(ret));
			}
			total_contacts += nlocked;
			if (nlocked == 0)
				continue;
			w = work_new();
			dp = make_diff_lazy(g->ixs, g->nix, true);
			run_diff(dp, locked, nlocked, w, true);
			run_work(w, -1, false);
			total_changes += w->total_changes;
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		depth--;
	}
	PG_END_TRY();
	result[0] = Int64GetDatum(total_contacts);
	result[1] = Int64GetDatum(total_changes);
	PG_RETURN_ARRAYTYPE_P(construct_array(result, 2, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
