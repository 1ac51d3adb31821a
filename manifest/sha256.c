/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 through libcrypto (EVP).  libcrypto is initialised on first use,
 * without reading openssl.cnf (a config file could make a static binary
 * dlopen a provider or engine), so commands that hash nothing never pay
 * for its start-up. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gs/fsx.h"

#include "gs/manifest.h"

static int crypto_init(struct gs_err *err)
{
	static bool done;
	if (done)
		return 0;
	if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL) != 1)
		return gs_err_setx(err, EIO, "sha256: cannot initialise libcrypto");
	done = true;
	return 0;
}

struct gs_sha256 {
	EVP_MD_CTX *ctx;
};

int gs_sha256_new(struct gs_sha256 **out, struct gs_err *err)
{
	int r = crypto_init(err);
	if (r < 0)
		return r;
	struct gs_sha256 *h = calloc(1, sizeof(*h));
	if (!h || !(h->ctx = EVP_MD_CTX_new())) {
		free(h);
		return gs_err_setx(err, ENOMEM, "sha256: out of memory");
	}
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		gs_sha256_free(h);
		return gs_err_setx(err, EIO, "sha256: EVP_DigestInit_ex failed");
	}
	*out = h;
	return 0;
}

int gs_sha256_update(struct gs_sha256 *h, const void *p, size_t n, struct gs_err *err)
{
	if (n && EVP_DigestUpdate(h->ctx, p, n) != 1)
		return gs_err_setx(err, EIO, "sha256: EVP_DigestUpdate failed");
	return 0;
}

int gs_sha256_final(struct gs_sha256 *h, char hex[65], struct gs_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32)
		return gs_err_setx(err, EIO, "sha256: EVP_DigestFinal_ex failed");
	for (unsigned int i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

void gs_sha256_free(struct gs_sha256 *h)
{
	if (h) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
	}
}

int gs_sha256_fd(int fd, void *buf, size_t bufsize, char hex[65], struct gs_err *err)
{
	struct gs_sha256 *h = NULL;
	int r = gs_sha256_new(&h, err);
	for (int eintr = 0; r >= 0;) {
		ssize_t n = read(fd, buf, bufsize);
		if (n < 0 && errno == EINTR && ++eintr < GS_EINTR_TRIES)
			continue;
		if (n <= 0) {
			r = n < 0 ? gs_err_set(err, errno, "read") : gs_sha256_final(h, hex, err);
			break;
		}
		eintr = 0;
		r = gs_sha256_update(h, buf, (size_t)n, err);
	}
	gs_sha256_free(h);
	return r;
}
