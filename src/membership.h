/*
 * membership.h: segment membership maintenance (membership.c) and the bridge from a segment
 * definition to what maintenance needs (membership_analyze.c).
 */
#ifndef OUTREACH_MEMBERSHIP_H
#define OUTREACH_MEMBERSHIP_H

#include "postgres.h"
#include "fmgr.h"

/* membership.c */
extern Datum outreach_membership_trigger(PG_FUNCTION_ARGS);
extern Datum outreach_apply_segment(PG_FUNCTION_ARGS);
extern Datum outreach_cascade_segment(PG_FUNCTION_ARGS);
extern Datum outreach_lock_contacts(PG_FUNCTION_ARGS);
extern Datum outreach_membership_invalidate(PG_FUNCTION_ARGS);

/* membership_analyze.c */
extern Datum outreach_segment_analyze(PG_FUNCTION_ARGS);

#endif							/* OUTREACH_MEMBERSHIP_H */
