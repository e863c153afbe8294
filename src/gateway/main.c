/*
 * main.c: outreach-gateway's entry point and send loop, shaped like PgBouncer's main: one
 * loop, a configuration file reloaded on SIGHUP, a clean stop on SIGTERM/SIGINT, log levels,
 * --help and -V.  (The HTTP endpoints run on libmicrohttpd's own thread with their own
 * PostgreSQL connection, so a slow SMTP batch never delays a click redirect.)
 *
 * The loop: LISTEN outreach_outbox; claim a batch (leases); write letters, send SMS, send
 * email over `concurrency` SMTP connections; report results in groups of report_every while
 * sending goes on (one report in flight; so a crash re-sends at most 2 x report_every +
 * concurrency messages, which carry the same Message-ID); when
 * nothing is due, sleep until a notification, the next message's send_after (quiet hours,
 * retries) or poll_seconds, whichever comes first.  A lost PostgreSQL connection is
 * re-established with backoff; results not yet reported are kept and reported then.
 */
#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>

Metrics metrics;
pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
Config *current_config;
pthread_rwlock_t config_lock = PTHREAD_RWLOCK_INITIALIZER;
const char *const channel_names[3] = {"email", "sms", "letter"};
volatile sig_atomic_t gateway_stopping;

static volatile sig_atomic_t got_hup;
static PGconn *conn;
static DkimKey *dkim;

int channel_index(const char *channel)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(channel, channel_names[i])) return i;
	return 0;
}

/* Signals may reach any thread (libcurl's resolver, libmicrohttpd's): the handlers also
 * write to a pipe that the send loop polls, so it wakes at once whichever thread got it. */
static int wake_pipe[2] = {-1, -1};
static void wake(void)
{
	int saved = errno;
	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "x", 1) < 0) { /* full: already woken */ }
	errno = saved;
}
static void on_term(int sig) { (void) sig; gateway_stopping = 1; wake(); }
static void on_hup(int sig) { (void) sig; got_hup = 1; wake(); }

static void usage(void)
{
	printf("outreach-gateway delivers the outreach outbox: email over SMTP, SMS over an HTTP provider,\n"
	       "letters as print batch files; and serves the tracking, unsubscribe and preference pages.\n\n"
	       "Usage: outreach-gateway [OPTION]... [CONFIG_FILE]\n\n"
	       "  -c, --config FILE   configuration file (default: /etc/outreach/gateway.conf if it exists)\n"
	       "      --check         validate the configuration, PostgreSQL, SMTP and DKIM, then exit\n"
	       "      --once          deliver what is due now, then exit (cron, tests)\n"
	       "  -v, --verbose       log_level = debug\n"
	       "  -q, --quiet         log_level = warning\n"
	       "      --help-config   list every setting\n"
	       "  -V, --version       print the version and exit\n"
	       "  -h, --help          this help\n\n"
	       "Settings come from the file and from OUTREACH_GATEWAY_<SETTING> environment variables.\n"
	       "Signals: SIGHUP reloads the configuration, SIGTERM and SIGINT stop after the current batch.\n"
	       "Documentation: docs/delivery.md.\n");
}

/* Connects (with backoff) unless stopping; returns whether connected. */
static bool ensure_connection(const Config *cfg, bool forever)
{
	if (db_ok(conn)) return true;
	double wait = 0.5;
	bool had = conn != NULL;
	if (conn) { PQfinish(conn); conn = NULL; }
	for (int attempt = 0;; attempt++) {
		conn = db_connect(cfg->conninfo, true);
		if (conn) break;
		if (!forever || (gateway_stopping && attempt >= 10)) return false;
		usleep((useconds_t) (wait * 1e6));
		if (wait < 10) wait *= 2;
	}
	if (!conn) return false;
	if (had) {
		pthread_mutex_lock(&metrics_lock);
		metrics.db_reconnects++;
		pthread_mutex_unlock(&metrics_lock);
		log_info("reconnected to PostgreSQL");
	}
	return true;
}

typedef struct BatchState {
	const Config *cfg;
	int finished_since_flush;
	double last_flush, started, last_renew;
} BatchState;

static void count_reported(Message *msgs, int n, const bool *before)
{
	pthread_mutex_lock(&metrics_lock);
	for (int i = 0; i < n; i++) {
		Message *m = &msgs[i];
		if (before[i] || !m->reported) continue;
		int c = channel_index(m->channel);
		if (!strcmp(m->status, "sent")) metrics.sent[c]++;
		else if (!strcmp(m->status, "bounced")) metrics.bounced[c]++;
		else if (!strcmp(m->status, "failed")) metrics.failed[c]++;
		else metrics.retried[c]++;
	}
	pthread_mutex_unlock(&metrics_lock);
}

/* Reports what is finished.  Not must (during a batch): without blocking the sending —
 * collect the previous report if it is done, then send the next one.  must (end of a
 * batch): wait, and on a broken connection reconnect and try again (the results stay in
 * memory meanwhile). */
static void flush_reports(BatchState *st, Message *msgs, int n, bool must)
{
	bool *before = xmalloc(sizeof(bool) * (size_t) n);
	for (int i = 0; i < n; i++) before[i] = msgs[i].reported;
	if (!must) {
		if (db_ok(conn)) {
			/* never more than 2 x report_every results unreported: wait for the previous report then */
			bool wait = st->finished_since_flush >= 2 * st->cfg->report_every;
			int r = db_report_collect(conn, msgs, n, wait);
			if (r == 1 && db_report_send(conn, st->cfg, msgs, n) >= 0) {
				st->finished_since_flush = 0;
				st->last_flush = now_seconds();
			}
		}
		count_reported(msgs, n, before);
		free(before);
		return;
	}
	bool ok = false;
	for (int tries = 0; !ok; tries++) {
		if (ensure_connection(st->cfg, true) && db_report(conn, st->cfg, msgs, n)) ok = true;
		else if (gateway_stopping && tries >= 3) break;
		else if (db_ok(conn) && tries > 5) {
			/* a statement error on a live connection does not fix itself */
			log_error("giving up reporting; the leases will return the messages to the queue");
			break;
		} else sleep(1);
	}
	count_reported(msgs, n, before);
	free(before);
	st->finished_since_flush = 0;
	st->last_flush = now_seconds();
}

static void on_progress(Message *msgs, int n, int idx, void *arg)
{
	BatchState *st = arg;
	(void) idx;
	st->finished_since_flush++;
	double now = now_seconds();
	if (st->finished_since_flush >= st->cfg->report_every || now - st->last_flush > 1.0)
		flush_reports(st, msgs, n, false);
	if (now - st->last_renew > st->cfg->lease_seconds / 2.0) {
		if (db_ok(conn) && db_report_collect(conn, msgs, n, true) >= 0) db_renew(conn, st->cfg, msgs, n);
		st->last_renew = now;
	}
}

static void process_batch(const Config *cfg, Message *msgs, int n)
{
	BatchState st = {cfg, 0, now_seconds(), now_seconds(), now_seconds()};
	letters_write(cfg, msgs, n);
	for (int i = 0; i < n; i++) {
		Message *m = &msgs[i];
		if (strcmp(m->channel, "sms") || m->status) continue;
		if (!strcmp(cfg->sms_provider, "none")) {
			m->status = "retry";
			m->retry_at = now_seconds() + cfg->retry_max_seconds;
			m->detail = xstrdup("this gateway has no sms_provider");
		} else sms_send(cfg, m);
		on_progress(msgs, n, i, &st);
	}
	smtp_send_batch(cfg, dkim, msgs, n, on_progress, &st);
	flush_reports(&st, msgs, n, true);
}

static void drain_notifications(void)
{
	PGnotify *nt;
	while ((nt = PQnotifies(conn))) PQfreemem(nt);
}

static bool load_dkim(const Config *cfg, DkimKey **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!*cfg->dkim_selector) return true;
	*out = dkim_load(cfg->dkim_key_file, err, errlen);
	return *out != NULL;
}

static void reload(void)
{
	char err[1024];
	got_hup = 0;
	Config *nc = config_load(current_config->path, err, sizeof err);
	if (!nc) { log_error("reload failed, keeping the running configuration: %s", err); return; }
	DkimKey *nk;
	if (!load_dkim(nc, &nk, err, sizeof err)) { log_error("reload failed, keeping the running configuration: %s", err); config_free(nc); return; }
	if (strcmp(nc->http_listen, current_config->http_listen))
		log_warning("http_listen changed; the HTTP endpoints move only when the gateway restarts");
	bool reconnect = strcmp(nc->conninfo, current_config->conninfo) != 0;
	pthread_rwlock_wrlock(&config_lock);
	Config *old = current_config;
	current_config = nc;
	pthread_rwlock_unlock(&config_lock);
	if (strcmp(old->worker, nc->worker) && db_ok(conn)) db_release(conn, old->worker);
	config_free(old);
	dkim_free(dkim);
	dkim = nk;
	log_level = nc->log_level;
	if (reconnect) { PQfinish(conn); conn = NULL; }
	log_info("configuration reloaded from %s", nc->path);
}

static int check(const Config *cfg)
{
	char err[1024];
	int bad = 0;
	printf("configuration %s: ok (worker \"%s\")\n", cfg->path ? cfg->path : "(environment)", cfg->worker);
	PGconn *c = db_connect(cfg->conninfo, false);
	if (!c) { printf("PostgreSQL: cannot connect\n"); bad++; }
	else {
		PGresult *r = PQexec(c, "SELECT outreach.gateway_next_due(), current_user");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) { printf("PostgreSQL: %s", PQerrorMessage(c)); bad++; }
		else printf("PostgreSQL: ok (as %s)\n", PQgetvalue(r, 0, 1));
		PQclear(r);
		PQfinish(c);
	}
	if (smtp_check(cfg, err, sizeof err)) printf("SMTP %s: ok\n", cfg->smtp_url);
	else { printf("%s\n", err); bad++; }
	DkimKey *k;
	if (!load_dkim(cfg, &k, err, sizeof err)) { printf("DKIM: %s\n", err); bad++; }
	else if (k) { printf("DKIM: key loaded (d=%s, s=%s)\n", cfg->dkim_domain, cfg->dkim_selector); dkim_free(k); }
	if (*cfg->letters_dir) {
		if (access(cfg->letters_dir, W_OK) == 0) printf("letters_dir %s: ok\n", cfg->letters_dir);
		else { printf("letters_dir %s: not writable: %s\n", cfg->letters_dir, strerror(errno)); bad++; }
	}
	printf("SMS provider: %s\n", cfg->sms_provider);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 1}, {"once", no_argument, NULL, 2},
		{"help-config", no_argument, NULL, 3}, {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
		{"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *path = NULL;
	bool do_check = false, once = false;
	int forced_level = -1, o;
	while ((o = getopt_long(argc, argv, "c:vqVh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': path = optarg; break;
		case 1: do_check = true; break;
		case 2: once = true; break;
		case 3: config_print_reference(); return 0;
		case 'v': forced_level = LOG_DEBUG; break;
		case 'q': forced_level = LOG_WARNING; break;
		case 'V': printf("outreach-gateway %s\n", GATEWAY_VERSION); return 0;
		case 'h': usage(); return 0;
		default: fprintf(stderr, "Try \"outreach-gateway --help\".\n"); return 2;
		}
	}
	if (optind < argc) path = argv[optind++];
	if (optind < argc) { fprintf(stderr, "outreach-gateway: too many arguments\nTry \"outreach-gateway --help\".\n"); return 2; }
	if (!path && access("/etc/outreach/gateway.conf", R_OK) == 0) path = "/etc/outreach/gateway.conf";

	char err[1024];
	current_config = config_load(path, err, sizeof err);
	if (!current_config) { fprintf(stderr, "outreach-gateway: %s\n", err); return 1; }
	if (forced_level >= 0) current_config->log_level = forced_level;
	log_level = current_config->log_level;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (do_check) return check(current_config);
	if (!load_dkim(current_config, &dkim, err, sizeof err)) { log_error("%s", err); return 1; }

	if (pipe(wake_pipe) != 0) { log_error("pipe: %s", strerror(errno)); return 1; }
	fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK);
	fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (*current_config->pid_file) {
		FILE *f = fopen(current_config->pid_file, "w");
		if (f) { fprintf(f, "%d\n", (int) getpid()); fclose(f); }
		else log_warning("could not write pid_file %s: %s", current_config->pid_file, strerror(errno));
	}
	metrics.started_at = now_seconds();
	/* the HTTP thread inherits a mask that keeps our signals for the main thread */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM); sigaddset(&block, SIGINT); sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	bool http_ok = once || !*current_config->http_listen || http_start(current_config, err, sizeof err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!http_ok) {
		log_error("%s", err);
		return 1;
	}
	log_info("outreach-gateway %s started (worker \"%s\", batch %d, %d SMTP connection(s))", GATEWAY_VERSION,
	         current_config->worker, current_config->batch_size, current_config->concurrency);

	bool first = true;
	while (!gateway_stopping) {
		if (got_hup) reload();
		const Config *cfg = current_config;
		if (!ensure_connection(cfg, true)) break;
		if (first) {
			int n = db_release(conn, cfg->worker);
			if (n > 0) log_info("gave back %d message(s) this worker had claimed before it stopped", n);
			first = false;
		}
		metrics.last_loop_at = now_seconds();
		Message *msgs = NULL;
		int n = db_claim(conn, cfg, &msgs);
		if (n < 0) { if (db_ok(conn)) sleep(1); continue; }
		if (n > 0) {
			pthread_mutex_lock(&metrics_lock);
			metrics.claimed += (unsigned long) n;
			pthread_mutex_unlock(&metrics_lock);
			log_debug("claimed %d message(s)", n);
			process_batch(cfg, msgs, n);
			for (int i = 0; i < n; i++) message_free(&msgs[i]);
			free(msgs);
			continue;
		}
		if (once) break;
		drain_notifications();
		double due = db_next_due(conn);
		if (due == -2) continue;
		double timeout = cfg->poll_seconds;
		if (due >= 0 && due < timeout) timeout = due;
		if (timeout < 0.2) timeout = 0.2;
		struct pollfd pfd[2] = {{PQsocket(conn), POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
		int pr = poll(pfd, 2, (int) (timeout * 1000));
		if (pr > 0 && (pfd[1].revents & POLLIN)) {
			char buf[64];
			while (read(wake_pipe[0], buf, sizeof buf) > 0) {}
		}
		if (pr > 0 && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))) {
			if (!PQconsumeInput(conn)) log_warning("lost the PostgreSQL connection: %s", PQerrorMessage(conn));
			else drain_notifications();
		}
	}
	log_info("stopping");
	http_stop();
	if (db_ok(conn)) db_release(conn, current_config->worker);
	PQfinish(conn);
	smtp_shutdown();
	dkim_free(dkim);
	if (*current_config->pid_file) unlink(current_config->pid_file);
	config_free(current_config);
	curl_global_cleanup();
	log_info("stopped");
	return 0;
}
