/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "gs/version.h"

bool gs_version_valid(const char *v)
{
	size_t groups = 0;
	if (!v)
		return false;
	const char *p = v;
	for (;;) {
		size_t n = strspn(p, "0123456789");
		if (n == 0)
			return false;
		groups++;
		p += n;
		if (*p == '\0')
			break;
		if (*p++ != '.')
			return false;
	}
	return groups >= 2 && (size_t)(p - v) <= GS_VERSION_MAX;
}

/* Copies the token P (N bytes) into BUF when it is a valid version. */
static bool take(const char *p, size_t n, char buf[GS_VERSION_MAX + 1])
{
	if (n == 0 || n > GS_VERSION_MAX)
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return gs_version_valid(buf);
}

bool gs_kmod_version_parse(const char *text, bool proc, char buf[GS_VERSION_MAX + 1])
{
	if (!text)
		return false;
	if (!proc) {
		const char *p = text + strspn(text, " \t");
		size_t n = strcspn(p, " \t\r\n");
		const char *rest = p + n;
		rest += strspn(rest, " \t\r");
		return (*rest == '\0' || *rest == '\n') && take(p, n, buf);
	}
	const char *p = strstr(text, "Kernel Module");
	if (!p)
		return false;
	const char *eol = p + strcspn(p, "\n");
	for (p += strlen("Kernel Module"); p < eol;) {
		p += strspn(p, " \t");
		size_t n = strcspn(p, " \t\n");
		if (n == 0)
			break;
		if (take(p, n, buf))
			return true;
		p += n;
	}
	return false;
}
