/* SPDX-License-Identifier: Apache-2.0 */
/* Capability names, as NVIDIA_DRIVER_CAPABILITIES spells them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gs/manifest.h"

static const struct {
	const char *name;
	unsigned int bit;
} cap_names[] = {
	{"utility", GS_CAP_UTILITY},   {"compute", GS_CAP_COMPUTE}, {"video", GS_CAP_VIDEO},
	{"graphics", GS_CAP_GRAPHICS}, {"display", GS_CAP_DISPLAY}, {"ngx", GS_CAP_NGX},
	{"compat32", GS_CAP_COMPAT32},
};
#define N_CAPS (sizeof(cap_names) / sizeof(cap_names[0]))

int gs_caps_parse(const char *list, unsigned int *caps, struct gs_err *err)
{
	*caps = 0;
	const char *p = list;
	while (*p) {
		size_t n = strcspn(p, ",");
		unsigned int bit = n == 3 && !strncmp(p, "all", 3) ? GS_CAP_ALL : gs_cap_bit(p, n);
		bool found = bit != 0;
		*caps |= bit;
		if (!found && n > 0)
			return gs_err_setx(err, EINVAL,
					   "unknown capability '%.*s' (utility, compute, video, graphics, display, ngx, compat32, all)",
					   (int)n, p);
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

const char *gs_caps_format(unsigned int caps, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < N_CAPS; i++) {
		if (!(caps & cap_names[i].bit))
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", cap_names[i].name);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	return buf;
}

const unsigned int gs_cap_order[GS_N_CAPS] = {
	GS_CAP_UTILITY, GS_CAP_COMPUTE, GS_CAP_VIDEO,	 GS_CAP_GRAPHICS,
	GS_CAP_DISPLAY, GS_CAP_NGX,	GS_CAP_COMPAT32,
};

unsigned int gs_cap_bit(const char *name, size_t len)
{
	for (size_t i = 0; i < N_CAPS; i++)
		if (strlen(cap_names[i].name) == len && !strncmp(name, cap_names[i].name, len))
			return cap_names[i].bit;
	return 0;
}

const char *gs_cap_name(unsigned int bit)
{
	for (size_t i = 0; i < N_CAPS; i++)
		if (cap_names[i].bit == bit)
			return cap_names[i].name;
	return NULL;
}
