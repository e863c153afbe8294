/*
 * outreach.c: module entry point.
 *
 * Owns PG_MODULE_MAGIC and _PG_init, where every outreach.* GUC is defined (other modules
 * register theirs through the hooks declared in outreach.h so the prefix stays reserved in
 * one place).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "outreach.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* outreach.now: the clock everything time-dependent reads; empty means now() */
char	   *outreach_now_setting = NULL;

void
_PG_init(void)
{
	/* Modules that own settings define them here, before the prefix is reserved. */
	DefineCustomStringVariable("outreach.now",
							   "Overrides the clock that segments and journeys read.",
							   "Empty (the default) means the transaction's now(). The tick sets it "
							   "locally to the time it was called with, so tests can drive time.",
							   &outreach_now_setting,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("outreach.membership_delta",
							 "Maintains segment membership from the changed rows where the query allows it.",
							 "On (the default), a single-row or small write decides membership from the "
							 "changed rows and the stored members where it can, and re-evaluates only what "
							 "it cannot decide. Off re-evaluates every concerned segment for the touched "
							 "contacts (the result is the same; tests compare both).",
							 &outreach_membership_delta,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	outreach_operations_init();
	MarkGUCPrefixReserved("outreach");
}
