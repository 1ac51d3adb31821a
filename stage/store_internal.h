/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the store (stage/store.c) and its commands (stage/cmd_store.c). */
#ifndef GS_STAGE_STORE_INTERNAL_H
#define GS_STAGE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gs/err.h"
#include "gs/stage.h"

#endif
