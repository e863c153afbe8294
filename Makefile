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
	src/sentiment.o \
	src/access.o \
	src/operations.o \
	src/render_batch.o \
	src/template_lang.o

# The install script is assembled from ordered parts so that each concern owns a file.
SQL_PARTS  = $(sort $(wildcard sql/parts/*.sql))
# The upgrade from the previous release is assembled the same way from sql/upgrade/FROM--TO/
# (links to the parts that are new, hand-written changes for the rest).
UPGRADE_FROM  = 0.2.0
UPGRADE_PARTS = $(sort $(wildcard sql/upgrade/$(UPGRADE_FROM)--$(EXTVERSION)/*.sql))
DATA_built = sql/outreach--$(EXTVERSION).sql sql/outreach--$(UPGRADE_FROM)--$(EXTVERSION).sql
# Earlier upgrade scripts, and the full scripts of released versions (kept to test the upgrades).
DATA       = sql/outreach--0.1.0--0.2.0.sql sql/outreach--0.1.0.sql sql/outreach--0.2.0.sql \
             outreach--0.1.0.control outreach--0.2.0.control
EXTRA_CLEAN = sql/outreach--$(EXTVERSION).sql sql/outreach--$(UPGRADE_FROM)--$(EXTVERSION).sql src/gateway/outreach-gateway

# `make installcheck`: the pg_regress suites against an already-installed server (PGXS; the
# usual PGHOST/PGPORT/PGUSER; database contrib_regression, or CONTRIB_TESTDB=...).
# extension_upgrade installs 0.2.0, which required pg_cron, so it runs only in pg_cron's
# database (used as it is, not recreated):
#   make installcheck CONTRIB_TESTDB=<cron.database_name> REGRESS_UPGRADE=extension_upgrade
REGRESS      = $(filter-out extension_upgrade,$(sort $(basename $(notdir $(wildcard test/sql/*.sql))))) $(REGRESS_UPGRADE)
REGRESS_OPTS = --inputdir=test $(if $(REGRESS_UPGRADE),--use-existing)

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

# outreach-gateway (src/gateway/, docs/delivery.md): a program beside the module, built by
# `make` and installed into PostgreSQL's bindir by `make install` (DESTDIR honoured).
GATEWAY      = src/gateway/outreach-gateway
GATEWAY_SRCS = $(sort $(wildcard src/gateway/*.c))
GATEWAY_CFLAGS = -std=gnu11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror -pthread \
	-I$(shell $(PG_CONFIG) --includedir) $(shell pkg-config --cflags libcurl libmicrohttpd openssl)
GATEWAY_LIBS = -L$(shell $(PG_CONFIG) --libdir) -lpq $(shell pkg-config --libs libcurl libmicrohttpd openssl) -pthread
all: $(GATEWAY)
$(GATEWAY): $(GATEWAY_SRCS) src/gateway/gateway.h
	$(CC) $(GATEWAY_CFLAGS) -o $@ $(GATEWAY_SRCS) $(GATEWAY_LIBS)
install: install-gateway
.PHONY: install-gateway
install-gateway: $(GATEWAY)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(GATEWAY) '$(DESTDIR)$(bindir)/outreach-gateway'

.PHONY: test demo demo-stop bench bench-fhir
# Everything from a fresh Debian machine: packages, build, private install, throwaway cluster, all suites.
test:
	bash test/run.sh
demo:
	bash scripts/demo.sh
demo-stop:
	bash scripts/demo.sh stop
bench:
	bash bench/run.sh
bench-fhir:
	bash bench/fhir.sh
