/* SPDX-License-Identifier: Apache-2.0 */
/* Ownership of driver files by the host's dpkg database (inside the host
 * root): ROOT/var/lib/dpkg/status gives each installed package's version,
 * ROOT/var/lib/dpkg/info/PKG[:ARCH].list the files it installed.  Only
 * packages whose name mentions "nvidia" or "cuda" are loaded: that is every
 * package of Debian's nvidia-graphics-drivers source and its satellites
 * (nvidia-persistenced, firmware-nvidia-gsp), and keeps the work small on a
 * host with thousands of packages.  This is the proof of version for files
 * whose name and bytes carry none (nvidia-cuda-mps-server, nvidia-debugdump).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dpkg.h"
#include "gs/cleanup.h"

#define STATUS_MAX (256u << 20)
#define LIST_MAX (16u << 20)

static bool driver_package(const char *name)
{
	return strstr(name, "nvidia") || strstr(name, "cuda");
}

/* "1:535.261.03-1~deb12u1" -> "535.261.03" (no epoch, no revision). */
static char *upstream_version(const char *v)
{
	const char *colon = strchr(v, ':');
	if (colon)
		v = colon + 1;
	const char *dash = strrchr(v, '-');
	return strndup(v, dash ? (size_t)(dash - v) : strlen(v));
}

static int add_owner(struct gs_dpkg *db, const char *path, const struct gs_dpkg_pkg *pkg)
{
	struct gs_dpkg_file *v = realloc(db->files, (db->n_files + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	db->files = v;
	v[db->n_files].path = strdup(path);
	if (!v[db->n_files].path)
		return -ENOMEM;
	v[db->n_files++].pkg = pkg;
	return 0;
}

/* Reads PATH of ROOT: 1 read, 0 not there; any other failure (too large,
 * unreadable, not a file) is an error naming it: a database read in part
 * would drop files whose only proof of version is their package. */
static int read_db_file(const struct gs_root *root, const char *path, size_t max, char **text,
			struct gs_err *err)
{
	int r = gs_root_read_text(root, path, max, text, err);
	if (r >= 0)
		return 1;
	if (err->code == ENOENT || err->code == ENOTDIR) {
		gs_err_clear(err);
		return 0;
	}
	return gs_err_wrap(err, "the dpkg database");
}

static int load_list(struct gs_dpkg *db, const struct gs_root *root, const struct gs_dpkg_pkg *pkg,
		     struct gs_err *err)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	/* Multi-Arch: same packages name their list PKG:ARCH.list. */
	if (asprintf(&path, "/var/lib/dpkg/info/%s:%s.list", pkg->name, pkg->arch) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	int r = read_db_file(root, path, LIST_MAX, &text, err);
	if (r == 0) {
		free(path);
		path = NULL;
		if (asprintf(&path, "/var/lib/dpkg/info/%s.list", pkg->name) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
		r = read_db_file(root, path, LIST_MAX, &text, err);
	}
	if (r <= 0)
		return r; /* 0: a package without a file list owns nothing */
	r = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); r >= 0 && line;
	     line = strtok_r(NULL, "\n", &save))
		if (line[0] == '/')
			r = add_owner(db, line, pkg);
	return r < 0 ? gs_err_setx(err, ENOMEM, "reading the dpkg database: out of memory") : 0;
}

struct stanza {
	char *name, *arch, *version;
	bool installed;
};

static void stanza_clear(struct stanza *s)
{
	free(s->name);
	free(s->arch);
	free(s->version);
	*s = (struct stanza){0};
}

static int keep_stanza(struct gs_dpkg *db, struct stanza *s)
{
	if (!s->name || !s->version || !s->installed || !driver_package(s->name)) {
		stanza_clear(s);
		return 0;
	}
	struct gs_dpkg_pkg **v = realloc(db->pkgs, (db->n_pkgs + 1) * sizeof(*v));
	struct gs_dpkg_pkg *p = v ? calloc(1, sizeof(*p)) : NULL;
	if (v)
		db->pkgs = v;
	if (!p) {
		stanza_clear(s);
		return -ENOMEM;
	}
	p->name = s->name;
	p->arch = s->arch ? s->arch : strdup("all");
	p->version = s->version;
	p->upstream = upstream_version(s->version);
	*s = (struct stanza){0};
	v[db->n_pkgs++] = p; /* owned by DB from here, even half-made */
	return p->arch && p->upstream ? 0 : -ENOMEM;
}

static int set_field(char **field, const char *value)
{
	free(*field);
	*field = strdup(value);
	return *field ? 0 : -ENOMEM;
}

static int parse_status(struct gs_dpkg *db, char *text)
{
	struct stanza s = {0};
	int r = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); r >= 0; line = strtok_r(NULL, "\n", &save)) {
		/* strtok_r skips empty lines, so a new "Package:" ends a stanza */
		if (!line || !strncmp(line, "Package: ", 9)) {
			r = keep_stanza(db, &s);
			if (!line || r < 0)
				break;
			r = set_field(&s.name, line + 9);
		} else if (!strncmp(line, "Version: ", 9)) {
			r = set_field(&s.version, line + 9);
		} else if (!strncmp(line, "Architecture: ", 14)) {
			r = set_field(&s.arch, line + 14);
		} else if (!strncmp(line, "Status: ", 8)) {
			s.installed = strstr(line + 8, " installed") != NULL;
		}
	}
	stanza_clear(&s);
	return r;
}

int gs_dpkg_load(const struct gs_root *root, struct gs_dpkg *db, struct gs_err *err)
{
	_cleanup_free_ char *text = NULL;
	*db = (struct gs_dpkg){0};
	int r = read_db_file(root, "/var/lib/dpkg/status", STATUS_MAX, &text, err);
	if (r <= 0)
		return r; /* 0: not a dpkg system */
	db->present = true;
	r = parse_status(db, text);
	if (r < 0)
		r = gs_err_set(err, -r, "reading the dpkg database");
	for (size_t i = 0; r >= 0 && i < db->n_pkgs; i++)
		r = load_list(db, root, db->pkgs[i], err);
	if (r < 0) {
		gs_dpkg_clear(db);
		return r;
	}
	return 0;
}

const struct gs_dpkg_pkg *gs_dpkg_owner(const struct gs_dpkg *db, const char *path,
					const char *also)
{
	for (size_t i = 0; i < db->n_files; i++)
		if (gs_same_merged_path(db->files[i].path, path) || (also && gs_same_merged_path(db->files[i].path, also)))
			return db->files[i].pkg;
	return NULL;
}

void gs_dpkg_clear(struct gs_dpkg *db)
{
	for (size_t i = 0; i < db->n_files; i++)
		free(db->files[i].path);
	for (size_t i = 0; i < db->n_pkgs; i++) {
		free(db->pkgs[i]->name);
		free(db->pkgs[i]->arch);
		free(db->pkgs[i]->version);
		free(db->pkgs[i]->upstream);
		free(db->pkgs[i]);
	}
	free(db->files);
	free(db->pkgs);
	*db = (struct gs_dpkg){0};
}
