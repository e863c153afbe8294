/*
 * membership.h: segment membership maintenance (membership.c): the statement triggers on
 * registered entities and the SQL-callable functions segments' SQL API builds on.
 */
#ifndef OUTREACH_MEMBERSHIP_H
#define OUTREACH_MEMBERSHIP_H

#include "postgres.h"
#include "fmgr.h"

extern Datum outreach_membership_trigger(PG_FUNCTION_ARGS);
extern Datum outreach_apply_segment(PG_FUNCTION_ARGS);
extern Datum outreach_cascade_segment(PG_FUNCTION_ARGS);
extern Datum outreach_lock_contacts(PG_FUNCTION_ARGS);
extern Datum outreach_apply_pending(PG_FUNCTION_ARGS);
extern Datum outreach_membership_invalidate(PG_FUNCTION_ARGS);

#endif							/* OUTREACH_MEMBERSHIP_H */
