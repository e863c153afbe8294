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
	outreach_operations_init();
	MarkGUCPrefixReserved("outreach");
}
