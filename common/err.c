/* SPDX-License-Identifier: Apache-2.0 */
#include "gs/err.h"

#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

static int vset(struct gs_err *err, int code, const char *suffix,
		const char *fmt, va_list ap)
{
	if (code <= 0)
		code = EIO;
	err->code = code;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (suffix && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", suffix);
	return -code;
}

int gs_err_set(struct gs_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vset(err, code, strerror(code > 0 ? code : EIO), fmt, ap);
	va_end(ap);
	return r;
}

int gs_err_setx(struct gs_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vset(err, code, NULL, fmt, ap);
	va_end(ap);
	return r;
}

int gs_err_elf(struct gs_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	const char *m = elf_errmsg(-1);
	int r = vset(err, code, m ? m : "libelf error", fmt, ap);
	va_end(ap);
	return r;
}

int gs_err_wrap(struct gs_err *err, const char *fmt, ...)
{
	char prefix[GS_ERR_MSG_MAX];
	char old[GS_ERR_MSG_MAX];
	va_list ap;

	if (err->code <= 0)
		err->code = EIO;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return -err->code;
}

void gs_err_clear(struct gs_err *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}
