/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for gpu-runtime's pieces: the splice editor of config.json
 * (hook/jsonedit.c: every byte outside the insertion kept, the last of a
 * member given twice edited, missing and null members created, wrong
 * types refused with D unchanged), the reading of config.json as runc
 * reads it (je_load_oci), and the command line's help and version options
 * (hook/rtargs.c: the runtime prints, creates nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../hook/jsonedit.h"
#include "../hook/rtargs.h"

static const char *const HOOKS[] = {"hooks", "createRuntime", NULL};
static const char *const MOUNTS[] = {"mounts", NULL};
static const char *const LDEV[] = {"linux", "resources", "devices", NULL};

/* TEXT with ELEM inserted into the array at PATH (index AT): the result,
 * or NULL with the error in MSG. */
static char *edit(const char *text, const char *const *path, ssize_t at, const char *elem,
		  char msg[256])
{
	struct je_doc d = {.text = strdup(text), .len = strlen(text)};
	struct gs_err err = GS_ERR_INIT;
	assert_non_null(d.text);
	msg[0] = '\0';
	if (je_array_insert(&d, path, at, elem, &err) < 0) {
		snprintf(msg, 256, "%s", err.msg);
		assert_string_equal(d.text, text); /* unchanged on error */
		free(d.text);
		return NULL;
	}
	assert_int_equal(d.len, strlen(d.text));
	return d.text;
}

static void check(const char *text, const char *const *path, ssize_t at, const char *want)
{
	char msg[256];
	char *got = edit(text, path, at, "X", msg);
	if (!got)
		fail_msg("%s: %s", text, msg);
	if (strcmp(got, want))
		fail_msg("%s: got %s, want %s", text, got, want);
	free(got);
}

static void test_insert_shapes(void **state)
{
	(void)state;
	check("{}", HOOKS, -1, "{\"hooks\":{\"createRuntime\":[X]}}");
	check(" {\"a\": 1}\n", HOOKS, -1, " {\"a\": 1,\"hooks\":{\"createRuntime\":[X]}}\n");
	check("{\"hooks\":null}", HOOKS, -1, "{\"hooks\":{\"createRuntime\":[X]}}");
	check("{\"hooks\":{}}", HOOKS, -1, "{\"hooks\":{\"createRuntime\":[X]}}");
	check("{\"hooks\":{\"prestart\":[1]}}", HOOKS, -1,
	      "{\"hooks\":{\"prestart\":[1],\"createRuntime\":[X]}}");
	check("{\"hooks\":{\"createRuntime\":[]}}", HOOKS, -1, "{\"hooks\":{\"createRuntime\":[X]}}");
	check("{\"hooks\":{\"createRuntime\":[ {\"p\":\"]\"} ]}}", HOOKS, -1,
	      "{\"hooks\":{\"createRuntime\":[ {\"p\":\"]\"} ,X]}}");
	check("{\"mounts\":[1,[2,3],{\"x\":\"}\"}]}", MOUNTS, 0, "{\"mounts\":[X,1,[2,3],{\"x\":\"}\"}]}");
	check("{\"mounts\":[1,[2,3],{\"x\":\"}\"}]}", MOUNTS, 2, "{\"mounts\":[1,[2,3],X,{\"x\":\"}\"}]}");
	check("{\"mounts\":[1,2]}", MOUNTS, 9, "{\"mounts\":[1,2,X]}");
	check("{\"linux\":{\"a\":\"\\\"}\"}}", LDEV, -1,
	      "{\"linux\":{\"a\":\"\\\"}\",\"resources\":{\"devices\":[X]}}}");
}

static void test_values_kept(void **state)
{
	(void)state;
	/* an unlimited rlimit (above INT64_MAX), a duplicate, odd numbers and
	 * escapes: all kept byte for byte */
	static const char text[] =
		"{\"process\":{\"rlimits\":[{\"type\":\"RLIMIT_CORE\",\"hard\":18446744073709551615,"
		"\"soft\":1.50e+3}],\"terminal\":true,\"terminal\":false},\"x\":\"\\u00e9\\ud83d\\ude00\"}";
	char msg[256];
	char *got = edit(text, HOOKS, -1, "{}", msg);
	assert_non_null(got);
	size_t n = strlen(text) - 1; /* all but the closing brace */
	assert_memory_equal(got, text, n);
	assert_string_equal(got + n, ",\"hooks\":{\"createRuntime\":[{}]}}");
	free(got);
}

static void test_last_duplicate(void **state)
{
	(void)state;
	/* jansson and runc (Go) take the last: the edit goes there */
	check("{\"hooks\":{\"createRuntime\":[1]},\"hooks\":{\"createRuntime\":[2]}}", HOOKS, -1,
	      "{\"hooks\":{\"createRuntime\":[1]},\"hooks\":{\"createRuntime\":[2,X]}}");
	/* an escaped spelling of the name is the same name */
	check("{\"ho\\u006fks\":{}}", HOOKS, -1, "{\"ho\\u006fks\":{\"createRuntime\":[X]}}");
	/* a longer name with our name as prefix is another name */
	check("{\"hooksx\":{}}", HOOKS, -1, "{\"hooksx\":{},\"hooks\":{\"createRuntime\":[X]}}");
}

static void test_wrong_types(void **state)
{
	(void)state;
	char msg[256];
	assert_null(edit("{\"hooks\":[]}", HOOKS, -1, "X", msg));
	assert_non_null(strstr(msg, "\"hooks\" must be an object"));
	assert_null(edit("{\"hooks\":{\"createRuntime\":{}}}", HOOKS, -1, "X", msg));
	assert_non_null(strstr(msg, "\"hooks.createRuntime\" must be an array"));
	assert_null(edit("{\"mounts\":\"x\"}", MOUNTS, -1, "X", msg));
	assert_non_null(strstr(msg, "\"mounts\" must be an array"));
	assert_null(edit("[]", MOUNTS, -1, "X", msg));
	assert_non_null(strstr(msg, "not a well-formed JSON object"));
	assert_null(edit("{\"mounts\":[1,", MOUNTS, -1, "X", msg));
	assert_non_null(strstr(msg, "not a well-formed JSON object"));
}

static void test_load_oci(void **state)
{
	(void)state;
	json_t *j = NULL;
	struct gs_err err = GS_ERR_INIT;
	static const char dup[] = "{\"a\":1,\"a\":2,\"big\":18446744073709551615,\"n\":\"x\\u0000y\"}";
	assert_int_equal(je_load_oci(dup, strlen(dup), "c.json", &j, &err), 0);
	assert_non_null(j);
	assert_true(json_number_value(json_object_get(j, "a")) == 2.0); /* the last, as runc */
	assert_true(json_is_real(json_object_get(j, "big")));
	json_decref(j);
	/* jansson cannot read it (invalid UTF-8), and it asks for no GPU: pass */
	static const char bad[] = "{\"process\":{\"env\":[\"A=\xff\"]}}";
	assert_int_equal(je_load_oci(bad, strlen(bad), "c.json", &j, &err), 0);
	assert_null(j);
	/* the same with the variable's name (or an escape that may spell it) */
	static const char badgpu[] = "{\"process\":{\"env\":[\"NVIDIA_VISIBLE_DEVICES=\xff\"]}}";
	assert_int_not_equal(je_load_oci(badgpu, strlen(badgpu), "c.json", &j, &err), 0);
	assert_non_null(strstr(err.msg, "c.json: line 1"));
	static const char badesc[] = "{\"process\":{\"env\":[\"\\u004eVIDIA=\xff\"]}}";
	assert_int_not_equal(je_load_oci(badesc, strlen(badesc), "c.json", &j, &err), 0);
	/* or the annotation, the one way to ask under "requests": "orchestrator" */
	static const char badann[] = "{\"annotations\":{\"gpu-stage.visible-devices\":\"all\"},\"x\":\"\xff\"}";
	assert_int_not_equal(je_load_oci(badann, strlen(badann), "c.json", &j, &err), 0);
	/* a raw NUL byte (found by fuzz_jsonedit: jansson accepted what came
	 * before it, and the edited text no longer parsed) */
	static const char nul[] = "{\"mounts\":[1\0,2]}";
	assert_int_equal(je_load_oci(nul, sizeof(nul) - 1, "c.json", &j, &err), 0);
	assert_null(j);
	static const char nulgpu[] = "{\"e\":\"NVIDIA_VISIBLE_DEVICES=0\",\n\"m\":[1\0]}";
	assert_int_not_equal(je_load_oci(nulgpu, sizeof(nulgpu) - 1, "c.json", &j, &err), 0);
	assert_non_null(strstr(err.msg, "c.json: line 2"));
	assert_non_null(strstr(err.msg, "NUL byte"));
	assert_int_not_equal(je_load_oci("[1]", 3, "c.json", &j, &err), 0);
	assert_non_null(strstr(err.msg, "not a JSON object"));
}

/* rt_args_parse on the words of LINE (space-separated), argv[0] "rt". */
static int args(enum rt_dialect d, const char *line, struct rt_args *a)
{
	static char buf[512];
	char *argv[32] = {(char *)"rt"};
	int argc = 1;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *s = NULL, *t = strtok_r(buf, " ", &s); t && argc < 31; t = strtok_r(NULL, " ", &s))
		argv[argc++] = t;
	struct gs_err err = GS_ERR_INIT;
	return rt_args_parse(d, argc, argv, a, &err);
}

static void test_help_creates_nothing(void **state)
{
	(void)state;
	static const struct {
		enum rt_dialect d;
		const char *line;
		bool create;
	} cases[] = {
		{RT_RUNC, "run -h", false},
		{RT_RUNC, "run --help", false},
		{RT_RUNC, "create -help -b /b c1", false},
		{RT_RUNC, "run c1 -h", false},	/* runc reads flags after the id */
		{RT_RUNC, "run -h=true c1", false},
		{RT_RUNC, "run -h=yes c1", false}, /* an error in runc: nothing runs */
		{RT_RUNC, "run -h=false -b /b c1", true},
		{RT_RUNC, "run --help=0 c1", true},
		{RT_RUNC, "--help run c1", false},
		{RT_RUNC, "-v run c1", false},
		{RT_RUNC, "--version=false run c1", true},
		{RT_CRUN, "run --help", false},
		{RT_CRUN, "run --he", false},	/* argp: a unique prefix */
		{RT_CRUN, "create -? c1", false},
		{RT_CRUN, "run -d? c1", false},
		{RT_CRUN, "--usage run c1", false},
		{RT_CRUN, "-V run c1", false},
		{RT_CRUN, "run c1 --help", true}, /* crun: options end at the id */
		{RT_EITHER, "run --help", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rt_args a;
		if (args(cases[i].d, cases[i].line, &a) != 0)
			fail_msg("'%s': refused", cases[i].line);
		if (a.create != cases[i].create)
			fail_msg("'%s': create %d, want %d", cases[i].line, a.create, cases[i].create);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_shapes),	 cmocka_unit_test(test_values_kept),
		cmocka_unit_test(test_last_duplicate),	 cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_load_oci),	 cmocka_unit_test(test_help_creates_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
