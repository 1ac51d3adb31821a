/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-runtime's reading of a runtime's command line (hook/rtargs.c): the
 * input, split at NUL bytes, is argv (argv[0] the program), read as runc,
 * as crun and as another runtime.  Promises: a refusal names its reason;
 * the command is one of the words; create and run name a bundle that is
 * "." or found in a word (whole, or after '=', or after -b); a reading as
 * "either runtime" that is accepted agrees with both runc's and crun's. */
#include "fuzz_common.h"
#include "../../hook/rtargs.h"

#define MAX_ARGS 64

static bool in_argv(int argc, char **argv, const char *s)
{
	for (int i = 0; i < argc; i++)
		if (s >= argv[i] && s <= argv[i] + strlen(argv[i]))
			return true;
	return false;
}

static int check(enum rt_dialect d, int argc, char **argv, struct rt_args *a)
{
	struct gs_err err = GS_ERR_INIT;
	int r = rt_args_parse(d, argc, argv, a, &err);
	fz_refused(r, &err);
	if (r < 0)
		return r;
	if (a->cmd < -1 || a->cmd >= argc || a->cmd == 0)
		abort(); /* the command is not one of the words */
	if (a->create) {
		if (a->cmd < 0 || (strcmp(argv[a->cmd], "create") && strcmp(argv[a->cmd], "run")))
			abort(); /* create without its word */
		if (!a->bundle || !a->bundle[0] ||
		    (strcmp(a->bundle, ".") && !in_argv(argc, argv, a->bundle)))
			abort(); /* a bundle from nowhere */
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fz_text(data, size);
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	argv[argc++] = "runc";
	for (size_t i = 0; i < size && argc < MAX_ARGS; argc++) {
		argv[argc] = text + i;
		i += strlen(text + i) + 1;
	}
	argv[argc] = NULL;
	struct rt_args runc, crun, either;
	int rr = check(RT_RUNC, argc, argv, &runc);
	int rc = check(RT_CRUN, argc, argv, &crun);
	int re = check(RT_EITHER, argc, argv, &either);
	if (re == 0 && (rr < 0 || rc < 0))
		abort(); /* accepted as either, refused by one */
	if (re == 0 && either.create &&
	    (!runc.create || !crun.create || runc.cmd != crun.cmd || either.cmd != runc.cmd ||
	     strcmp(runc.bundle, crun.bundle) || strcmp(either.bundle, runc.bundle)))
		abort(); /* runc and crun would read it differently */
	free(text);
	return 0;
}
