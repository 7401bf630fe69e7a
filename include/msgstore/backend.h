/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgstore/backend.h - which database a store lives in. Shared by the
 * settings (msgstore/store_config.h: store_config_backend) and the store API
 * (msgstore/store.h: store_migrations).
 */
#ifndef MSGSTORE_BACKEND_H
#define MSGSTORE_BACKEND_H

typedef enum ms_backend_kind {
    MS_BACKEND_SQLITE = 0,
    MS_BACKEND_SCYLLA = 1,
} ms_backend_kind;

#endif
