/* SPDX-License-Identifier: Apache-2.0 */
#include "core/error.h"

const char *ms_err_name(int code)
{
    switch (code) {
    case MS_OK:
        return "ok";
    case MS_ERR_INVALID:
        return "invalid_argument";
    case MS_ERR_NOT_FOUND:
        return "not_found";
    case MS_ERR_CONFLICT:
        return "conflict";
    case MS_ERR_TOO_LARGE:
        return "payload_too_large";
    case MS_ERR_UNPROCESSABLE:
        return "unprocessable";
    case MS_ERR_UNAUTHORIZED:
        return "unauthorized";
    case MS_ERR_FORBIDDEN:
        return "forbidden";
    case MS_ERR_RATE_LIMITED:
        return "rate_limited";
    case MS_ERR_UNAVAILABLE:
        return "unavailable";
    case MS_ERR_TIMEOUT:
        return "timeout";
    case MS_ERR_NOMEM:
        return "out_of_memory";
    case MS_ERR_IO:
        return "io_error";
    case MS_ERR_CLOCK:
        return "clock_error";
    case MS_ERR_SHUTDOWN:
        return "shutting_down";
    case MS_ERR_INTERNAL:
        return "internal";
    default:
        return "unknown_error";
    }
}

const char *ms_err_str(int code)
{
    switch (code) {
    case MS_OK:
        return "success";
    case MS_ERR_INVALID:
        return "invalid argument";
    case MS_ERR_NOT_FOUND:
        return "not found";
    case MS_ERR_CONFLICT:
        return "conflict";
    case MS_ERR_TOO_LARGE:
        return "payload too large";
    case MS_ERR_UNPROCESSABLE:
        return "unprocessable";
    case MS_ERR_UNAUTHORIZED:
        return "unauthorized";
    case MS_ERR_FORBIDDEN:
        return "forbidden";
    case MS_ERR_RATE_LIMITED:
        return "rate limited";
    case MS_ERR_UNAVAILABLE:
        return "service unavailable";
    case MS_ERR_TIMEOUT:
        return "timed out";
    case MS_ERR_NOMEM:
        return "out of memory";
    case MS_ERR_IO:
        return "I/O error";
    case MS_ERR_CLOCK:
        return "clock moved backwards beyond the allowed bound";
    case MS_ERR_SHUTDOWN:
        return "shutting down";
    case MS_ERR_INTERNAL:
        return "internal error";
    default:
        return "unknown error";
    }
}
