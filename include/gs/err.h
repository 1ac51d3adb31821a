/* SPDX-License-Identifier: Apache-2.0 */
/* One error convention for the whole project.
 *
 * A fallible function takes `struct gs_err *err` as its last parameter and
 * returns >= 0 on success (0, an fd, a count) or -code on failure, after
 * filling *err with a message that names the object and the reason.  The
 * caller owns the struct (usually on its stack); reporting needs no malloc.
 * Libraries never print: the mains print err->msg once, at the top. */
#ifndef GS_ERR_H
#define GS_ERR_H

#include <stdarg.h>

#define GS_ERR_MSG_MAX 512

struct gs_err {
	int code;                 /* errno-style, always > 0 once set */
	char msg[GS_ERR_MSG_MAX]; /* "<object>: <reason>" */
};

#define GS_ERR_INIT {0, {0}}

/* Sets err from a failed system call: appends ": strerror(code)". Returns -code. */
int gs_err_set(struct gs_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sets err without strerror (data errors: EBADMSG, EINVAL, ...). Returns -code. */
int gs_err_setx(struct gs_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefixes context to an already-set error, keeps its code. Returns -code. */
int gs_err_wrap(struct gs_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Adapter for libelf: appends elf_errmsg(-1). Returns -code. */
int gs_err_elf(struct gs_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void gs_err_clear(struct gs_err *err);

#endif
