/*
 * sign.c: signed link tokens.  A token is "<id>.<sig>" where sig is the first 22 characters
 * (132 bits) of base64url(HMAC-SHA256(link_secret, purpose ":" id [":" extra])).  The purpose
 * ("open", "click", "unsubscribe", "preferences", "confirm", "receipt",
 * "event") keeps a token for one
 * endpoint from working on another; extra binds a click token to its URL.  Verification
 * compares in constant time.  The secret never leaves the gateway's configuration.
 */
#include "gateway.h"

#include <ctype.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIG_LEN 22

static void compute(StrBuf *sig, const char *secret, const char *purpose, const char *id, size_t id_len, const char *extra)
{
	StrBuf msg;
	sb_init(&msg);
	sb_puts(&msg, purpose);
	sb_append(&msg, ":", 1);
	sb_append(&msg, id, id_len);
	if (extra) { sb_append(&msg, ":", 1); sb_puts(&msg, extra); }
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	HMAC(EVP_sha256(), secret, (int) strlen(secret), (const unsigned char *) msg.data, msg.len, mac, &mac_len);
	sb_free(&msg);
	StrBuf b64;
	sb_init(&b64);
	base64_encode(&b64, mac, mac_len, true);
	sb_append(sig, b64.data, SIG_LEN);
	sb_free(&b64);
}

void sign_token(StrBuf *b, const char *secret, const char *purpose, const char *id, const char *extra)
{
	sb_puts(b, id);
	sb_append(b, ".", 1);
	compute(b, secret, purpose, id, strlen(id), extra);
}

bool verify_token(const char *secret, const char *purpose, const char *token, const char *extra, char *id_out, size_t id_len)
{
	if (!token) return false;
	const char *dot = strrchr(token, '.');
	if (!dot || dot == token || strlen(dot + 1) != SIG_LEN || (size_t) (dot - token) >= id_len) return false;
	for (const char *p = token; p < dot; p++)
		if (!isalnum((unsigned char) *p)) return false;
	StrBuf sig;
	sb_init(&sig);
	compute(&sig, secret, purpose, token, (size_t) (dot - token), extra);
	bool ok = CRYPTO_memcmp(sig.data, dot + 1, SIG_LEN) == 0;
	sb_free(&sig);
	if (ok) {
		memcpy(id_out, token, (size_t) (dot - token));
		id_out[dot - token] = '\0';
	}
	return ok;
}
