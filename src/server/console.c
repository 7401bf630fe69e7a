/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console.c - GET /console: one static page (console.html, compiled into
 * the binary) where a person pastes a token, opens a channel, sees messages
 * arrive live (SSE with ?access_token=), scrolls back, posts, reacts and
 * sees who types. Everything it loads comes from this server; the page is
 * public, the API calls it makes carry the pasted token.
 */
#include "core/error.h"
#include "server/server_internal.h"

extern const char srv__console_html[];
extern const size_t srv__console_html_len;

static void h_console(http_request *r, void *ctx)
{
    (void)ctx;
    http_response_header(r, "cache-control", "no-store");
    http_response_header(r, "content-security-policy",
                         "default-src 'none'; script-src 'unsafe-inline'; "
                         "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                         "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    http_response_header(r, "x-content-type-options", "nosniff");
    http_response_header(r, "referrer-policy", "no-referrer");
    http_respond(r, 200, "text/html; charset=utf-8", srv__console_html, srv__console_html_len);
}

int srv__routes_console(srv *s)
{
    return http_server_route(s->http, HTTP_GET, "/console", HTTP_ROUTE_PUBLIC, h_console, s);
}
