/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - structured logs: one line per event on stderr, JSON or text.
 *
 * Thread-safe: each line is formatted into a local buffer and written with a
 * single write(2). Never log secrets (tokens, passwords): callers pass only
 * what may be read by operators.
 */
#ifndef MS_CORE_LOG_H
#define MS_CORE_LOG_H

#include <stdbool.h>

typedef enum ms_log_level {
    MS_LOG_DEBUG = 0,
    MS_LOG_INFO = 1,
    MS_LOG_WARN = 2,
    MS_LOG_ERROR = 3,
} ms_log_level;

/* Sets the lowest level written and the format. Call before threads start. */
void ms_log_setup(ms_log_level level, bool json);

/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int ms_log_level_parse(const char *s);

bool ms_log_enabled(ms_log_level level);

/*
 * Writes one line: ts, level, component ("cql", "http", ...) and the
 * formatted message. In JSON the message is escaped.
 */
void ms_log(ms_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MS_DEBUG(comp, ...)                                                                        \
    do {                                                                                           \
        if (ms_log_enabled(MS_LOG_DEBUG))                                                          \
            ms_log(MS_LOG_DEBUG, comp, __VA_ARGS__);                                               \
    } while (0)
#define MS_INFO(comp, ...)  ms_log(MS_LOG_INFO, comp, __VA_ARGS__)
#define MS_WARN(comp, ...)  ms_log(MS_LOG_WARN, comp, __VA_ARGS__)
#define MS_ERROR(comp, ...) ms_log(MS_LOG_ERROR, comp, __VA_ARGS__)

#endif
