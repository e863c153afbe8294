# outreach: PGXS build.  The version lives in outreach.control only.
EXTENSION  = outreach
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" outreach.control)

MODULE_big = outreach
OBJS = \
	src/outreach.o \
	src/datamodel.o \
	src/query_parse.o \
	src/query_type.o \
	src/query_compile.o \
	src/membership.o \
	src/render.o \
	src/template_lang.o

# The install script is assembled from ordered parts so that each concern owns a file.
SQL_PARTS  = $(sort $(wildcard sql/parts/*.sql))
# The upgrade from the previous release is assembled the same way from sql/upgrade/FROM--TO/
# (links to the parts that are new, hand-written changes for the rest).
UPGRADE_FROM  = 0.2.0
UPGRADE_PARTS = $(sort $(wildcard sql/upgrade/$(UPGRADE_FROM)--$(EXTVERSION)/*.sql))
DATA_built = sql/outreach--$(EXTVERSION).sql sql/outreach--$(UPGRADE_FROM)--$(EXTVERSION).sql
# Earlier upgrade scripts, and the full scripts of released versions (kept to test the upgrades).
DATA       = sql/outreach--0.1.0--0.2.0.sql sql/outreach--0.1.0.sql sql/outreach--0.2.0.sql
EXTRA_CLEAN = sql/outreach--$(EXTVERSION).sql sql/outreach--$(UPGRADE_FROM)--$(EXTVERSION).sql

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/outreach--$(EXTVERSION).sql: $(SQL_PARTS) outreach.control
	@echo "-- outreach $(EXTVERSION): generated from sql/parts/*.sql by make; do not edit" > $@
	@printf '%s\n' '\echo Use "CREATE EXTENSION outreach CASCADE" to load this file. \quit' >> $@
	cat $(SQL_PARTS) >> $@

sql/outreach--$(UPGRADE_FROM)--$(EXTVERSION).sql: $(UPGRADE_PARTS) $(SQL_PARTS) outreach.control
	@echo "-- outreach $(UPGRADE_FROM) -> $(EXTVERSION): generated from sql/upgrade/$(UPGRADE_FROM)--$(EXTVERSION)/*.sql by make; do not edit" > $@
	@printf '%s\n' '\echo Use "ALTER EXTENSION outreach UPDATE" to load this file. \quit' >> $@
	cat $(UPGRADE_PARTS) >> $@

.PHONY: test demo demo-stop bench
# Everything from a fresh Debian machine: packages, build, private install, throwaway cluster, all suites.
test:
	bash test/run.sh
demo:
	bash scripts/demo.sh
demo-stop:
	bash scripts/demo.sh stop
bench:
	bash bench/run.sh
