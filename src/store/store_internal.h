/*
 * store_internal.h - what the store's files share: the operation record that
 * travels from the API to a backend and back, the backend vtable, result
 * allocation, validation. Nothing here is public.
 */
#ifndef MS_STORE_INTERNAL_H
#define MS_STORE_INTERNAL_H

#include "msgstore/store.h"

extern const store_migration store__sqlite_migrations[];
extern const size_t store__sqlite_migration_count;
extern const store_migration store__cql_migrations[];
extern const size_t store__cql_migration_count;

#endif
