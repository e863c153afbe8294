/*
 * query_type.c: the SQL type outreach.segment_query: input, output, binary send/receive,
 * equality, ordering and hashing.
 *
 * Storage is a varlena holding a format version byte followed by the canonical text of the
 * query (no terminating NUL).  Input parses the text and stores the deparsed canonical form,
 * so two values are equal exactly when their canonical texts are byte-equal, and output is a
 * copy.  The binary form is the same version byte and the text; receive repeats every check
 * of input.  Nothing here looks at the registry: names are checked when a query is compiled.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "query.h"

#define SEGMENT_QUERY_VERSION 1

typedef struct SegmentQueryData
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	char		text[FLEXIBLE_ARRAY_MEMBER];	/* canonical text, not NUL-terminated */
} SegmentQueryData;

#define SQ_TEXT_LEN(sq) (VARSIZE_ANY_EXHDR(sq) - 1)
#define SQ_TEXT(sq) (VARDATA_ANY(sq) + 1)
#define SQ_VERSION(sq) (*(uint8 *) VARDATA_ANY(sq))

PG_FUNCTION_INFO_V1(segment_query_in);
PG_FUNCTION_INFO_V1(segment_query_out);
PG_FUNCTION_INFO_V1(segment_query_recv);
PG_FUNCTION_INFO_V1(segment_query_send);
PG_FUNCTION_INFO_V1(segment_query_eq);
PG_FUNCTION_INFO_V1(segment_query_ne);
PG_FUNCTION_INFO_V1(segment_query_lt);
PG_FUNCTION_INFO_V1(segment_query_le);
PG_FUNCTION_INFO_V1(segment_query_gt);
PG_FUNCTION_INFO_V1(segment_query_ge);
PG_FUNCTION_INFO_V1(segment_query_cmp);
PG_FUNCTION_INFO_V1(segment_query_hash);
PG_FUNCTION_INFO_V1(segment_query_tree);

/* parse text and build the stored value from its canonical form */
static struct varlena *
segment_query_from_cstring(const char *text)
{
	QueryNode  *tree = segment_query_parse(text);
	char	   *canonical = segment_query_deparse(tree);
	size_t		len = strlen(canonical);
	SegmentQueryData *sq = palloc(offsetof(SegmentQueryData, text) + len);

	SET_VARSIZE(sq, offsetof(SegmentQueryData, text) + len);
	sq->version = SEGMENT_QUERY_VERSION;
	memcpy(sq->text, canonical, len);
	return (struct varlena *) sq;
}

static void
check_version(const struct varlena *sq)
{
	if (VARSIZE_ANY_EXHDR(sq) < 1 || SQ_VERSION(sq) != SEGMENT_QUERY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("segment query has unknown storage version %d",
						VARSIZE_ANY_EXHDR(sq) < 1 ? -1 : (int) SQ_VERSION(sq)),
				 errdetail("This build of outreach reads version %d.", SEGMENT_QUERY_VERSION)));
}

char *
segment_query_datum_to_cstring(Datum d)
{
	struct varlena *sq = PG_DETOAST_DATUM_PACKED(d);

	check_version(sq);
	return pnstrdup(SQ_TEXT(sq), SQ_TEXT_LEN(sq));
}

Datum
segment_query_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(segment_query_from_cstring(PG_GETARG_CSTRING(0)));
}

Datum
segment_query_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(segment_query_datum_to_cstring(PG_GETARG_DATUM(0)));
}

/* binary input: a version byte, then the text in the client encoding; checked like input */
Datum
segment_query_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version;
	int			nbytes;
	char	   *text;

	if (buf->cursor >= buf->len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary segment query: no version byte")));
	version = pq_getmsgbyte(buf);
	if (version != SEGMENT_QUERY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary segment query version %d", version),
				 errdetail("This build of outreach reads version %d.", SEGMENT_QUERY_VERSION)));
	/* converts from the client encoding and refuses invalid bytes, NUL included */
	text = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);
	PG_RETURN_POINTER(segment_query_from_cstring(text));
}

Datum
segment_query_send(PG_FUNCTION_ARGS)
{
	struct varlena *sq = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	StringInfoData buf;

	check_version(sq);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, SEGMENT_QUERY_VERSION);
	pq_sendtext(&buf, SQ_TEXT(sq), SQ_TEXT_LEN(sq));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* byte order of the canonical texts: equal exactly when the canonical forms are equal */
static int
compare_args(FunctionCallInfo fcinfo)
{
	struct varlena *a = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	struct varlena *b = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(1));
	int			la = VARSIZE_ANY_EXHDR(a);
	int			lb = VARSIZE_ANY_EXHDR(b);
	int			r = memcmp(VARDATA_ANY(a), VARDATA_ANY(b), Min(la, lb));

	if (r == 0)
		r = (la > lb) - (la < lb);
	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return r;
}

Datum
segment_query_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(compare_args(fcinfo) == 0);
}

Datum
segment_query_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(compare_args(fcinfo) != 0);
}

Datum
segment_query_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(compare_args(fcinfo) < 0);
}

Datum
segment_query_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(compare_args(fcinfo) <= 0);
}

Datum
segment_query_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(compare_args(fcinfo) > 0);
}

Datum
segment_query_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(compare_args(fcinfo) >= 0);
}

Datum
segment_query_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(compare_args(fcinfo));
}

Datum
segment_query_hash(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	Datum		h = hash_any((unsigned char *) VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a));

	PG_FREE_IF_COPY(a, 0);
	PG_RETURN_DATUM(h);
}

/* outreach._segment_query_tree(text, with_locations): the parse tree of a text, for tests */
Datum
segment_query_tree(PG_FUNCTION_ARGS)
{
	char	   *src = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		with_locations = PG_GETARG_BOOL(1);

	PG_RETURN_TEXT_P(cstring_to_text(segment_query_tree_string(segment_query_parse(src), with_locations)));
}
