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
	src/render.o

# The install script is assembled from ordered parts so that each concern owns a file.
SQL_PARTS  = $(sort $(wildcard sql/parts/*.sql))
DATA_built = sql/outreach--$(EXTVERSION).sql
# Upgrade scripts, and the full scripts of released versions (kept to test the upgrades).
DATA       = $(wildcard sql/outreach--*--*.sql) sql/outreach--0.1.0.sql
EXTRA_CLEAN = sql/outreach--$(EXTVERSION).sql

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/outreach--$(EXTVERSION).sql: $(SQL_PARTS) outreach.control
	@echo "-- outreach $(EXTVERSION): generated from sql/parts/*.sql by make; do not edit" > $@
	@printf '%s\n' '\echo Use "CREATE EXTENSION outreach CASCADE" to load this file. \quit' >> $@
	cat $(SQL_PARTS) >> $@

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
