/*
 * outreach.h: declarations shared between the modules of the outreach extension.
 */
#ifndef OUTREACH_H
#define OUTREACH_H

#include "postgres.h"

/* outreach.c */
extern char *outreach_now_setting;
extern bool outreach_membership_delta;

/* operations.c */
extern void outreach_operations_init(void);

/* datamodel.c */
extern List *outreach_column_allowed_values(Oid relid, AttrNumber attnum);

#endif							/* OUTREACH_H */
