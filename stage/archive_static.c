/* SPDX-License-Identifier: Apache-2.0 */
/* Linked into the static gpu-stage only (Makefile ARCHIVE_STATIC).
 *
 * libarchive's pax and ustar writers report an entry type they cannot
 * store through __archive_write_entry_filetype_unsupported(), which lives
 * in archive_write_set_format.o next to the table of every writer
 * (7-Zip, xar, zip, ISO 9660...): linking it would pull them all in, and
 * with them static libxml2, ICU, liblzma, libbz2 and nettle, none of which
 * `gpu-stage export` uses.  This is the same function (libarchive 3.6's
 * message, its errno on Linux (EINVAL) and its return value); the export only ever writes regular files and
 * symbolic links, which pax stores, so it is never reached there.  A
 * libarchive whose objects change makes the link fail loudly (a duplicate
 * or a missing symbol), never silently. */
#include <archive.h>
#include <errno.h>
#include <archive_entry.h>

int __archive_write_entry_filetype_unsupported(struct archive *a, struct archive_entry *entry,
						const char *format);

int __archive_write_entry_filetype_unsupported(struct archive *a, struct archive_entry *entry,
						const char *format)
{
	archive_set_error(a, EINVAL, "%s: %s format cannot archive this entry type",
			  archive_entry_pathname(entry), format);
	return ARCHIVE_FAILED;
}
