/*
 * datamodel.c: checks and housekeeping for the outreach data model.
 *
 * Owns the functions that CHECK constraints and row triggers of the built-in tables call
 * (and that users may call on their own tables): enumerated values with an error that lists
 * what is allowed, E.164 phone numbers, time zone names, and updated_at maintenance.  It also
 * answers "which values does this column allow?" by reading those CHECK constraints back, so
 * the segment validator and the entity_field view never keep a second copy of the lists.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "nodes/primnodes.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "outreach.h"

PG_FUNCTION_INFO_V1(outreach_allowed_value);
PG_FUNCTION_INFO_V1(outreach_valid_phone);
PG_FUNCTION_INFO_V1(outreach_valid_time_zone);
PG_FUNCTION_INFO_V1(outreach_touch_updated_at);
PG_FUNCTION_INFO_V1(outreach_field_allowed_values);

/* Join the elements of a text[] as "a, b, c" for messages. */
static char *
join_text_array(ArrayType *arr, Datum **elems_out, bool **nulls_out, int *n_out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	StringInfoData buf;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, TextDatumGetCString(elems[i]));
	}
	if (elems_out)
		*elems_out = elems;
	if (nulls_out)
		*nulls_out = nulls;
	if (n_out)
		*n_out = n;
	return buf.data;
}

/*
 * allowed_value(value, field, allowed): true when value is NULL or one of allowed; otherwise
 * an error that names the field and lists the allowed values.  Used in CHECK constraints,
 * because a plain CHECK violation names only the constraint.
 */
Datum
outreach_allowed_value(PG_FUNCTION_ARGS)
{
	text	   *value;
	char	   *field;
	ArrayType  *allowed;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	char	   *list;
	char	   *v;
	const char *suggestion = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(true);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("outreach.allowed_value needs a field name and a list of allowed values")));
	value = PG_GETARG_TEXT_PP(0);
	field = text_to_cstring(PG_GETARG_TEXT_PP(1));
	allowed = PG_GETARG_ARRAYTYPE_P(2);
	v = text_to_cstring(value);

	deconstruct_array(allowed, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *a;

		if (nulls[i])
			continue;
		a = TextDatumGetCString(elems[i]);
		if (strcmp(a, v) == 0)
			PG_RETURN_BOOL(true);
		if (pg_strcasecmp(a, v) == 0)
			suggestion = a;
	}
	list = join_text_array(allowed, NULL, NULL, NULL);
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("invalid value \"%s\" for %s", v, field),
			 errdetail("Allowed values are: %s.", list),
			 suggestion ? errhint("Values are case-sensitive; did you mean \"%s\"?", suggestion) : 0));
	PG_RETURN_BOOL(false);
}

/*
 * valid_phone(value, field): E.164 ("+" then 2 to 15 digits, the first not 0), or NULL.
 */
Datum
outreach_valid_phone(PG_FUNCTION_ARGS)
{
	char	   *v;
	char	   *field;
	size_t		len;
	bool		ok;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(true);
	v = text_to_cstring(PG_GETARG_TEXT_PP(0));
	field = PG_ARGISNULL(1) ? "phone" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	len = strlen(v);
	ok = len >= 3 && len <= 16 && v[0] == '+' && v[1] >= '1' && v[1] <= '9';
	for (size_t i = 1; ok && i < len; i++)
		ok = isdigit((unsigned char) v[i]);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid phone number \"%s\" for %s", v, field),
				 errdetail("Phone numbers are stored in E.164 form: \"+\", the country code and the number, 2 to 15 digits in all, without spaces or punctuation."),
				 errhint("Write for example \"+14155550123\".")));
	PG_RETURN_BOOL(true);
}

/*
 * valid_time_zone(value, field): a time zone name the server knows (IANA names such as
 * "America/New_York", or "UTC"), or NULL.
 */
Datum
outreach_valid_time_zone(PG_FUNCTION_ARGS)
{
	char	   *v;
	char	   *field;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(true);
	v = text_to_cstring(PG_GETARG_TEXT_PP(0));
	field = PG_ARGISNULL(1) ? "time_zone" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (v[0] == '\0' || pg_tzset(v) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid time zone \"%s\" for %s", v, field),
				 errdetail("A time zone is an IANA name the server knows, as listed in pg_timezone_names."),
				 errhint("Write for example \"America/New_York\" or \"Europe/London\".")));
	PG_RETURN_BOOL(true);
}

/*
 * touch_updated_at(): BEFORE UPDATE row trigger that sets updated_at to the transaction's
 * time, so the column is kept by the database whatever the writer sends.
 */
Datum
outreach_touch_updated_at(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	int			attnum;
	int			cols[1];
	Datum		values[1];
	bool		nulls[1] = {false};
	HeapTuple	newtuple;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "touch_updated_at: not called by trigger manager");
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		elog(ERROR, "touch_updated_at: must be a BEFORE ... FOR EACH ROW trigger");
	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	attnum = SPI_fnumber(tupdesc, "updated_at");
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no column \"updated_at\"",
						RelationGetRelationName(trigdata->tg_relation))));
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);

		/*
		 * The datum written is a timestamptz: writing it into a column of any other type
		 * would store garbage (date, int4) or crash the backend (text reads it as a varlena).
		 */
		if (att->atttypid != TIMESTAMPTZOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"updated_at\" of table \"%s\" has type %s, not timestamp with time zone",
							RelationGetRelationName(trigdata->tg_relation),
							format_type_be(att->atttypid)),
					 errdetail("outreach.touch_updated_at() writes the transaction's start time, a timestamptz."),
					 errhint("Change the column to timestamptz or drop the trigger.")));
	}
	cols[0] = attnum;
	values[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	newtuple = heap_modify_tuple_by_cols(trigdata->tg_newtuple, tupdesc, 1, cols, values, nulls);
	return PointerGetDatum(newtuple);
}

/* Is this function outreach.allowed_value? */
static bool
is_allowed_value_func(Oid funcid)
{
	char	   *name = get_func_name(funcid);
	Oid			nsp = get_func_namespace(funcid);
	char	   *nspname = OidIsValid(nsp) ? get_namespace_name(nsp) : NULL;

	return name && nspname && strcmp(name, "allowed_value") == 0 && strcmp(nspname, "outreach") == 0;
}

typedef struct AllowedSearch
{
	AttrNumber	attnum;
	List	   *result;
} AllowedSearch;

static bool
find_allowed_walker(Node *node, AllowedSearch *s)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && is_allowed_value_func(((FuncExpr *) node)->funcid))
	{
		FuncExpr   *f = (FuncExpr *) node;
		Node	   *arg0 = linitial(f->args);
		Node	   *arg2 = list_length(f->args) >= 3 ? lthird(f->args) : NULL;

		while (arg0 && (IsA(arg0, RelabelType) || IsA(arg0, CoerceViaIO)))
			arg0 = IsA(arg0, RelabelType) ? (Node *) ((RelabelType *) arg0)->arg
				: (Node *) ((CoerceViaIO *) arg0)->arg;
		if (arg0 && IsA(arg0, Var) && ((Var *) arg0)->varattno == s->attnum &&
			arg2 && IsA(arg2, Const) && !((Const *) arg2)->constisnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(((Const *) arg2)->constvalue), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &n);
			for (int i = 0; i < n; i++)
				if (!nulls[i])
					s->result = lappend(s->result, TextDatumGetCString(elems[i]));
			return true;
		}
	}
	return expression_tree_walker(node, find_allowed_walker, (void *) s);
}

/*
 * The allowed values of a column, read from CHECK constraints that call
 * outreach.allowed_value(column, ...); NIL when the column is not enumerated.
 */
List *
outreach_column_allowed_values(Oid relid, AttrNumber attnum)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	AllowedSearch s = {attnum, NIL};

	if (constr)
	{
		for (int i = 0; i < constr->num_check && s.result == NIL; i++)
		{
			Node	   *expr = stringToNode(constr->check[i].ccbin);

			find_allowed_walker(expr, &s);
		}
	}
	table_close(rel, AccessShareLock);
	return s.result;
}

/* SQL: outreach.field_allowed_values(rel regclass, field name) returns text[] */
Datum
outreach_field_allowed_values(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *col = NameStr(*PG_GETARG_NAME(1));
	AttrNumber	attnum = get_attnum(relid, col);
	List	   *vals;
	Datum	   *elems;
	int			i = 0;
	ListCell   *lc;

	if (attnum == InvalidAttrNumber)
		PG_RETURN_NULL();
	vals = outreach_column_allowed_values(relid, attnum);
	if (vals == NIL)
		PG_RETURN_NULL();
	elems = palloc(sizeof(Datum) * list_length(vals));
	foreach(lc, vals)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT));
}
