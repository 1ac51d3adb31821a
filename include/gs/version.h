/* SPDX-License-Identifier: Apache-2.0 */
/* Driver versions: the one validator, and the one reader of what the
 * kernel module publishes. */
#ifndef GS_VERSION_H
#define GS_VERSION_H

#include <stdbool.h>
#include <stddef.h>

#define GS_VERSION_MAX 31 /* longest valid version, in bytes */

/* A driver version as NVIDIA numbers them: digits in groups separated by
 * single dots, at least two groups, at most GS_VERSION_MAX bytes
 * ("535.261.03", "550.54").  It is also the name of STORE/VER. */
bool gs_version_valid(const char *v);

/* The version in the text of /proc/driver/nvidia/version (PROC true) or
 * /sys/module/nvidia/version (PROC false) into BUF (GS_VERSION_MAX + 1
 * bytes).  /proc: the first whole token after "Kernel Module" on that line
 * that is a valid version; the proprietary module's line is
 * "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.261.03  <date>",
 * the open modules' "NVRM version: NVIDIA UNIX Open Kernel Module for
 * x86_64  535.261.03  Release Build  (...)".  /sys: the first line, blanks
 * around it ignored.  Returns false when there is none. */
bool gs_kmod_version_parse(const char *text, bool proc, char buf[GS_VERSION_MAX + 1]);

#endif
