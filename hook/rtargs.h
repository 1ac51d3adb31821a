/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-runtime's reading of an OCI runtime's command line: which word is the
 * command and, for create and run, which bundle the runtime will use. */
#ifndef HK_RTARGS_H
#define HK_RTARGS_H

#include <stdbool.h>

#include "gs/err.h"

/* How a runtime parses its arguments. */
enum rt_dialect {
	RT_RUNC, /* urfave/cli (v1: Go's flag package; v3): -name and --name are
		  * the same flag, -b/--b too, "=" or the next word gives a
		  * value, no abbreviations, no clusters of short options;
		  * create/run flags may follow the container id, and (v3)
		  * global flags may follow the command */
	RT_CRUN, /* glibc argp (getopt_long, in order): --name only, unique
		  * prefixes of long names, -b DIR, -bDIR, clusters such as
		  * -db DIR; options stop at the first non-option */
	RT_EITHER, /* another runtime: runc's and crun's readings must agree */
};

struct rt_args {
	int cmd;            /* index of the command word in argv; -1: none */
	bool create;        /* that word is "create" or "run" */
	const char *bundle; /* create/run: the bundle ("." by default) */
};

/* The dialect of the runtime RUNTIME (a path or a name): runc and crun by
 * their base name, anything else RT_EITHER. */
enum rt_dialect rt_dialect_of(const char *runtime);

/* Reads ARGV (ARGC words, argv[0] the program) as runtime dialect D would.
 * Returns 0, or -EINVAL with ERR naming the argument when create or run
 * may be the command but the command or its bundle cannot be known for
 * certain: an unknown option before the command, an unknown option of
 * create/run, crun's --config with another file than config.json, or (for
 * RT_EITHER) words that runc and crun read differently. */
int rt_args_parse(enum rt_dialect d, int argc, char **argv, struct rt_args *out,
		  struct gs_err *err);

#endif
