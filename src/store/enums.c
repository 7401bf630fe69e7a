/* SPDX-License-Identifier: Apache-2.0 */
/* enums.c - names of the store's enumerations, and their parsers. */
#include "store_internal.h"

#include <string.h>

static const char *const type_names[STORE_MSG_TYPE_COUNT] = {"text",  "image", "file",    "video",
                                                             "audio", "voice", "sticker", "system"};
static const char *const source_names[STORE_MSG_SOURCE_COUNT] = {"web", "telegram", "api"};
static const char *const direction_names[STORE_SYNC_DIRECTION_COUNT] = {
    "bidirectional", "telegram_to_web", "web_to_telegram"};
#define OP_NAME(KIND, label, fn, ...) [STORE_OP_##KIND] = #label,
static const char *const op_names[STORE_OP_COUNT] = {STORE_OPS(OP_NAME)};
#undef OP_NAME

static int find(const char *const *names, int n, const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *store_msg_type_name(store_msg_type t)
{
    return (unsigned)t < STORE_MSG_TYPE_COUNT ? type_names[t] : NULL;
}

const char *store_msg_source_name(store_msg_source s)
{
    return (unsigned)s < STORE_MSG_SOURCE_COUNT ? source_names[s] : NULL;
}

const char *store_sync_direction_name(store_sync_direction d)
{
    return (unsigned)d < STORE_SYNC_DIRECTION_COUNT ? direction_names[d] : NULL;
}

const char *store_op_name(store_op_kind op)
{
    return (unsigned)op < STORE_OP_COUNT ? op_names[op] : NULL;
}

int store_msg_type_parse(const char *name, store_msg_type *out)
{
    int i = find(type_names, STORE_MSG_TYPE_COUNT, name);
    if (i < 0)
        return MS_ERR_INVALID;
    *out = (store_msg_type)i;
    return 0;
}

int store_msg_source_parse(const char *name, store_msg_source *out)
{
    int i = find(source_names, STORE_MSG_SOURCE_COUNT, name);
    if (i < 0)
        return MS_ERR_INVALID;
    *out = (store_msg_source)i;
    return 0;
}

int store_sync_direction_parse(const char *name, store_sync_direction *out)
{
    int i = find(direction_names, STORE_SYNC_DIRECTION_COUNT, name);
    if (i < 0)
        return MS_ERR_INVALID;
    *out = (store_sync_direction)i;
    return 0;
}

const store_migration *store_migrations(ms_backend_kind backend, size_t *n)
{
    if (backend == MS_BACKEND_SCYLLA) {
        *n = store__cql_migration_count;
        return store__cql_migrations;
    }
    *n = store__sqlite_migration_count;
    return store__sqlite_migrations;
}
