/*
 * query.h: the segment language's abstract syntax tree, shared by the parser
 * (query_parse.c), the SQL type (query_type.c) and the compiler (query_compile.c).
 *
 * The tree mirrors the grammar of DESIGN §3.  Identifiers are already folded (lower case
 * unless they were double-quoted).  Every node carries the 0-based character offset of its
 * first token in the source text, so the validator can point at what is wrong.
 */
#ifndef OUTREACH_QUERY_H
#define OUTREACH_QUERY_H

#include "postgres.h"
#include "nodes/pg_list.h"

typedef enum QueryNodeType
{
	/* query level: these produce a set of contacts */
	QN_CONTACT,					/* contact [where filter] */
	QN_SEGMENT,					/* segment 'name' */
	QN_SETOP,					/* left (union|intersect|except) right, left-associative */

	/* conditions: evaluated on one row of the entity in scope */
	QN_OR,						/* args: two or more */
	QN_AND,						/* args: two or more */
	QN_NOT,						/* arg */
	QN_CMP,						/* field cmp value */
	QN_MATCH,					/* field [not] contains|starts with|ends with value(string) */
	QN_EMPTY,					/* field is [not] empty */
	QN_IN_LIST,					/* field [not] in (values) */
	QN_IN_VALUE_SET,			/* field [not] in value_set 'name' */
	QN_BETWEEN,					/* field [not] between value and value2 (inclusive) */
	QN_WITHIN,					/* field within last|next amount unit */
	QN_OLDER_THAN,				/* field older than amount unit */
	QN_HAS,						/* has [no] relation [where filter] */
	QN_AGG,						/* agg(relation[.field] [where filter]) cmp value */
	QN_LATEST,					/* latest(relation.field [where filter]) cmp value | is [not] empty */
	QN_IN_SEGMENT				/* in segment 'name' */
} QueryNodeType;

typedef enum QSetOp
{
	QSET_UNION, QSET_INTERSECT, QSET_EXCEPT
} QSetOp;

/* '<>' is read as QCMP_NE and printed as '!=' */
typedef enum QCmpOp
{
	QCMP_EQ, QCMP_NE, QCMP_LT, QCMP_LE, QCMP_GT, QCMP_GE
} QCmpOp;

typedef enum QMatchOp
{
	QMATCH_CONTAINS, QMATCH_STARTS_WITH, QMATCH_ENDS_WITH,
	QMATCH_REGEX				/* matches 'regular expression' */
} QMatchOp;

/* calendar periods of "in this|last|next week|month|quarter|year" */
typedef enum QPeriod
{
	QPERIOD_NONE, QPERIOD_WEEK, QPERIOD_MONTH, QPERIOD_QUARTER, QPERIOD_YEAR
} QPeriod;

/* what an aggregate's or latest's result is tested with */
typedef enum QResultTest
{
	QRES_CMP,					/* cmp value */
	QRES_EMPTY,					/* is [not] empty (empty_test is also set) */
	QRES_BETWEEN,				/* [not] between value and value2 */
	QRES_IN_LIST				/* [not] in (values) */
} QResultTest;

typedef enum QAggFunc
{
	QAGG_COUNT, QAGG_MIN, QAGG_MAX, QAGG_SUM, QAGG_AVG
} QAggFunc;

/* singular and plural spellings read the same; output is singular for 1, plural otherwise */
typedef enum QUnit
{
	QUNIT_MINUTE, QUNIT_HOUR, QUNIT_DAY, QUNIT_WEEK, QUNIT_MONTH, QUNIT_YEAR
} QUnit;

typedef enum QDirection
{
	QDIR_LAST, QDIR_NEXT, QDIR_THIS
} QDirection;

typedef enum QValueKind
{
	QV_STRING,					/* 'text' */
	QV_NUMBER,					/* 42, 4.5, -3 (text holds the canonical digits) */
	QV_BOOL,					/* true / false */
	QV_DATE,					/* date '2024-01-31' (text holds the string as written) */
	QV_TIMESTAMP,				/* timestamp '2024-01-31 10:00' */
	QV_TODAY,					/* today [+|- amount unit] */
	QV_NOW,						/* now [+|- amount unit] */
	QV_CONTACT_FIELD			/* contact.field [+|- amount unit] (text holds the field): inside relations */
} QValueKind;

/* one more "+|- amount unit" after the first, for contact.field (contact.birthdate + 2 years + 1 day) */
typedef struct QOffset
{
	int			sign;			/* +1 or -1 */
	int64		amount;
	QUnit		unit;
} QOffset;

/* Documented limits of a segment query (docs/segment-language.md, "Limits"). */
#define QUERY_MAX_LENGTH		262144	/* bytes of query text */
#define QUERY_MAX_LIST_ITEMS	10000	/* values of one in (...) list */
#define QUERY_MAX_OFFSETS		100		/* + / - steps after one contact.field */
#define QUERY_MAX_REGEX			1000	/* characters of one matches pattern */

typedef struct QValue
{
	QValueKind	kind;
	char	   *text;			/* STRING, NUMBER, DATE, TIMESTAMP; CONTACT_FIELD: the field */
	bool		boolval;		/* BOOL */
	int			offset_sign;	/* TODAY, NOW, CONTACT_FIELD: 0 (no offset), +1 or -1 */
	int64		offset_amount;
	QUnit		offset_unit;
	List	   *more_offsets;	/* CONTACT_FIELD: further offsets (QOffset *), applied left to right */
	int			location;
} QValue;

typedef struct QRelation
{
	char	   *entity;			/* registered entity name */
	char	   *via;			/* link column when ambiguous, else NULL */
	int			location;
} QRelation;

typedef struct QueryNode
{
	QueryNodeType type;
	int			location;		/* offset of the node's first token */

	/* QN_SETOP */
	QSetOp		setop;
	struct QueryNode *left;
	struct QueryNode *right;

	/* QN_AND, QN_OR: List of QueryNode *; QN_NOT: arg */
	List	   *args;
	struct QueryNode *arg;

	/* QN_CONTACT, QN_HAS, QN_AGG, QN_LATEST: the condition on the rows in scope, or NULL */
	struct QueryNode *filter;

	/* predicates: the field of the entity in scope; QN_AGG: relation's field or NULL; QN_LATEST: relation's field */
	char	   *field;
	int			field_location;
	bool		negated;		/* not contains, is not empty, not in, not between, has no */
	bool		distinct;		/* QN_AGG count: count(distinct relation.field) */
	bool		distinct_day;	/* ... count(distinct day of relation.field): calendar days in the time zone */
	bool		empty_test;		/* QN_LATEST: "is [not] empty" (negated: not) instead of cmp value */
	QCmpOp		cmp;			/* QN_CMP, QN_AGG, QN_LATEST */
	QMatchOp	match;			/* QN_MATCH */
	QValue	   *value;			/* QN_CMP, QN_AGG, QN_LATEST, QN_MATCH; QN_BETWEEN: low */
	QValue	   *value2;			/* QN_BETWEEN: high */
	QValue	   *age_at;			/* field predicates on contact's age: "age at <date>", or NULL (today) */
	List	   *values;			/* QN_IN_LIST: List of QValue * */
	char	   *name;			/* QN_SEGMENT, QN_IN_SEGMENT, QN_IN_VALUE_SET */
	int			name_location;
	QDirection	direction;		/* QN_WITHIN (QDIR_THIS only with period) */
	QPeriod		period;			/* QN_WITHIN: "field [not] in this|last|next <period>", else QPERIOD_NONE */
	bool		anniversary;	/* QN_WITHIN: "anniversary of field within ..." (field "birthday": of birthdate) */
	QResultTest result_test;	/* QN_AGG, QN_LATEST: how the result is tested */
	int64		amount;			/* QN_WITHIN, QN_OLDER_THAN */
	QUnit		unit;			/* QN_WITHIN, QN_OLDER_THAN */
	QAggFunc	agg;			/* QN_AGG */
	QRelation  *relation;		/* QN_HAS, QN_AGG, QN_LATEST */
} QueryNode;

/* query_parse.c: text -> tree; ereports ERRCODE_SYNTAX_ERROR with position on bad input */
extern QueryNode *segment_query_parse(const char *text);
extern int	outreach_bidi_control_offset(const char *s, int len);

/* query_parse.c: tree -> canonical text (keywords lower case, minimal parentheses) */
extern char *segment_query_deparse(const QueryNode *node);

/*
 * query_parse.c: a fully parenthesised dump of the tree (every field; with or without the
 * source locations), for tests and debugging; outreach._segment_query_tree() in SQL.
 */
extern char *segment_query_tree_string(const QueryNode *node, bool with_locations);

/*
 * query_type.c: the canonical text of an outreach.segment_query datum (palloc'd,
 * NUL-terminated); parse it with segment_query_parse() to get the tree.  Locations in that
 * tree are offsets into this canonical text.
 */
extern char *segment_query_datum_to_cstring(Datum d);

/*
 * query_compile.c: tree -> SQL returning one column "contact_id" (bigint), distinct.
 * Validates names against the registry (ereport with position, hint).  When restricted is
 * true the SQL takes $1 bigint[] and evaluates only those contacts.  time_zone is used for
 * relative dates (NULL: the session's TimeZone).
 */
typedef struct CompileOptions
{
	bool		restricted;
	const char *time_zone;
	const char *source_text;	/* for error positions; may be NULL */
	const char *segment_name;	/* the segment being defined: references back to it are refused; may be NULL */
	bool		maintenance;	/* compiling a live segment for maintenance: a value set emptied since it
								 * went live matches nothing instead of being an error */
} CompileOptions;

extern char *segment_query_compile(const QueryNode *node, const CompileOptions *opts);

/*
 * query_compile.c: what a query depends on, for maintenance: registered entity names it
 * reads (List of char *), segment names it refers to (List of char *), and whether it
 * depends on the clock (relative dates, age).
 */
typedef struct QueryDependencies
{
	List	   *entities;
	List	   *segments;
	bool		time_dependent;
} QueryDependencies;

extern QueryDependencies *segment_query_dependencies(const QueryNode *node);

/*
 * query_compile.c: for maintenance, a boolean SQL expression over a row aliased "tr" of the
 * entity that is false only when a change of that row cannot change the query's result
 * (the OR of the filters of every use of the entity); NULL when every row may matter.
 * *local: the expression reads only the row itself.
 */
extern char *segment_query_relevance(const QueryNode *node, const char *entity,
									 const char *time_zone, bool *local);

/*
 * query_compile.c: what maintenance by delta needs of a query for changes of one entity
 * (membership.c, docs/segments.md "Maintenance by delta").  Defined only for "contact where
 * F" in which every use of the entity is an atom of F: a has / has no / aggregate / latest
 * over the entity, reached from F's root through and / or only (no not, not inside another
 * relation), linked directly to the contact, whose filter reads only the row itself.
 * form holds F in prefix order: DELTA_AND / DELTA_OR n child..., DELTA_ATOM i, DELTA_OTHER
 * (a leaf that does not read the entity: unchanged by its rows).
 */
typedef enum DeltaAtomKind
{
	DELTA_HAS,					/* has R where P: true as soon as one row satisfies P */
	DELTA_HAS_NO,				/* has no R where P: false as soon as one row satisfies P */
	DELTA_TERM					/* count/sum/.../latest: re-evaluated when a row satisfying P changes */
} DeltaAtomKind;

enum
{
	DELTA_AND = 1, DELTA_OR = 2, DELTA_ATOM = 3, DELTA_OTHER = 4
};

typedef struct DeltaAtom
{
	DeltaAtomKind kind;
	char	   *row_pred;		/* SQL boolean over the entity's row "tr": the atom's filter */
	char	   *term_sql;		/* SQL boolean over the contact "c0": the atom as the segment evaluates it */
} DeltaAtom;

typedef struct SegmentDelta
{
	char	   *link_column;	/* the entity's column holding the contact id */
	int			natoms;
	DeltaAtom  *atoms;
	int			nform;
	int		   *form;
} SegmentDelta;

/*
 * query_compile.c: for maintenance, the contacts a changed row of the entity can concern
 * through a nested use (has condition where has encounter where has condition ...: a
 * condition of patient B changes whether patient A, whose condition points at B's
 * encounter, is a member).  SQL returning contact ids, reading the changed rows from a
 * table "outreach_new" aliased tr, one SELECT per nested use joined by UNION; NULL when
 * the entity is used only directly under the contact.
 */
extern char *segment_query_back_paths(const QueryNode *node, const char *entity, const char *time_zone);

extern void segment_query_registry_hold(bool hold);

extern SegmentDelta *segment_query_delta(const QueryNode *node, const char *entity, const char *time_zone);

#endif							/* OUTREACH_QUERY_H */
