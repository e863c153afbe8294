/*
 * dkim.c: DKIM signatures (RFC 6376), rsa-sha256 with relaxed/relaxed canonicalization,
 * computed with OpenSSL.  The signed headers are those of the list below that the message
 * has; the key is a PEM RSA private key (docs/delivery.md shows how to make one and publish
 * the DNS record).
 */
#include "gateway.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

struct DkimKey { EVP_PKEY *pkey; };

static const char *const signed_headers[] = {
	"from", "to", "subject", "date", "message-id", "mime-version", "content-type",
	"list-unsubscribe", "list-unsubscribe-post", "list-id", "reply-to", NULL};

DkimKey *dkim_load(const char *key_file, char *err, size_t errlen)
{
	FILE *f = fopen(key_file, "r");
	if (!f) { snprintf(err, errlen, "could not open DKIM key file \"%s\"", key_file); return NULL; }
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k || EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
		snprintf(err, errlen, "\"%s\" is not a PEM RSA private key", key_file);
		EVP_PKEY_free(k);
		return NULL;
	}
	DkimKey *d = xmalloc(sizeof *d);
	d->pkey = k;
	return d;
}

void dkim_free(DkimKey *k)
{
	if (!k) return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

/* relaxed header canonicalization of "Name: value" (value possibly folded) */
static void canon_header(StrBuf *b, const char *h, size_t len)
{
	const char *colon = memchr(h, ':', len);
	if (!colon) return;
	const char *ne = colon;
	while (ne > h && isspace((unsigned char) ne[-1])) ne--;
	for (const char *p = h; p < ne; p++) { char c = (char) tolower((unsigned char) *p); sb_append(b, &c, 1); }
	sb_append(b, ":", 1);
	const char *v = colon + 1, *end = h + len;
	bool space = false, started = false;
	for (; v < end; v++) {
		if (*v == '\r' || *v == '\n') continue;
		if (*v == ' ' || *v == '\t') { space = true; continue; }
		if (space && started) sb_append(b, " ", 1);
		space = false;
		started = true;
		sb_append(b, v, 1);
	}
}

static void canon_body(StrBuf *b, const char *body, size_t len)
{
	size_t empty = 0;
	const char *p = body, *end = body + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		const char *le = nl ? nl : end;
		const char *lend = le;
		if (lend > p && lend[-1] == '\r') lend--;
		StrBuf line;
		sb_init(&line);
		sb_append(&line, "", 0);
		bool space = false;
		for (const char *q = p; q < lend; q++) {
			if (*q == ' ' || *q == '\t') { space = true; continue; }
			if (space) sb_append(&line, " ", 1);
			space = false;
			sb_append(&line, q, 1);
		}
		if (line.len == 0) empty++;
		else {
			for (; empty; empty--) sb_append(b, "\r\n", 2);
			sb_append(b, line.data, line.len);
			sb_append(b, "\r\n", 2);
		}
		sb_free(&line);
		p = nl ? nl + 1 : end;
	}
}

bool dkim_sign(StrBuf *msg, DkimKey *k, const char *domain, const char *selector, char *err, size_t errlen)
{
	const char *sep = strstr(msg->data, "\r\n\r\n");
	if (!sep) { snprintf(err, errlen, "message has no body"); return false; }
	size_t hlen = (size_t) (sep - msg->data) + 2;
	const char *body = sep + 4;
	StrBuf cb;
	sb_init(&cb);
	sb_append(&cb, "", 0);
	canon_body(&cb, body, msg->len - (size_t) (body - msg->data));
	unsigned char bh[EVP_MAX_MD_SIZE];
	unsigned int bhl = 0;
	EVP_Digest(cb.data, cb.len, bh, &bhl, EVP_sha256(), NULL);
	sb_free(&cb);

	/* split the header block into fields (a field continues on lines starting with WSP) */
	const char *fields[64];
	size_t flen[64];
	int nf = 0;
	const char *p = msg->data, *hend = msg->data + hlen;
	while (p < hend && nf < 64) {
		const char *q = p;
		do {
			const char *nl = strstr(q, "\r\n");
			q = nl ? nl + 2 : hend;
		} while (q < hend && (*q == ' ' || *q == '\t'));
		fields[nf] = p;
		flen[nf] = (size_t) (q - p) - 2;
		nf++;
		p = q;
	}
	StrBuf hl, data, sig;
	sb_init(&hl); sb_init(&data); sb_init(&sig);
	sb_append(&hl, "", 0);
	for (int s = 0; signed_headers[s]; s++) {
		size_t nl = strlen(signed_headers[s]);
		for (int i = nf - 1; i >= 0; i--) {
			if (flen[i] > nl && strncasecmp(fields[i], signed_headers[s], nl) == 0 && (fields[i][nl] == ':' || fields[i][nl] == ' ')) {
				canon_header(&data, fields[i], flen[i]);
				sb_append(&data, "\r\n", 2);
				sb_printf(&hl, "%s%s", hl.len ? ":" : "", signed_headers[s]);
				break;
			}
		}
	}
	sb_printf(&sig, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s; t=%ld; h=%s; bh=", domain, selector,
	          (long) time(NULL), hl.data);
	base64_encode(&sig, bh, bhl, false);
	sb_puts(&sig, "; b=");
	canon_header(&data, sig.data, sig.len);

	bool ok = false;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t slen = 0;
	unsigned char *sbytes = NULL;
	if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1
	    && EVP_DigestSign(ctx, NULL, &slen, (const unsigned char *) data.data, data.len) == 1) {
		sbytes = xmalloc(slen);
		if (EVP_DigestSign(ctx, sbytes, &slen, (const unsigned char *) data.data, data.len) == 1) ok = true;
	}
	if (ok) {
		base64_encode(&sig, sbytes, slen, false);
		sb_puts(&sig, "\r\n");
		StrBuf out;
		sb_init(&out);
		sb_append(&out, sig.data, sig.len);
		sb_append(&out, msg->data, msg->len);
		sb_free(msg);
		*msg = out;
	} else snprintf(err, errlen, "DKIM signing failed: %s", ERR_error_string(ERR_get_error(), NULL));
	free(sbytes);
	EVP_MD_CTX_free(ctx);
	sb_free(&hl); sb_free(&data); sb_free(&sig);
	return ok;
}
