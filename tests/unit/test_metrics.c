/* SPDX-License-Identifier: Apache-2.0 */
/* Metrics registry: registration, updates from threads, Prometheus rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *bump(void *p)
{
    ms_counter *c = p;
    for (int i = 0; i < 100000; i++)
        ms_counter_add(c, 1);
    return NULL;
}

static void collect(ms_metrics_buf *b, void *ctx)
{
    ms_metrics_appendf(b, "custom_metric %d\n", *(int *)ctx);
}

static void test_render(void **state)
{
    (void)state;
    ms_metrics_reset();
    ms_counter *a = ms_counter_get("t_requests_total", "route=\"/a\"", "requests");
    ms_counter *b = ms_counter_get("t_requests_total", "route=\"/b\"", "requests");
    assert_ptr_equal(a, ms_counter_get("t_requests_total", "route=\"/a\"", "ignored"));
    assert_ptr_not_equal(a, b);
    pthread_t th[2];
    pthread_create(&th[0], NULL, bump, a);
    pthread_create(&th[1], NULL, bump, a);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    ms_counter_add(b, 3);
    ms_gauge *g = ms_gauge_get("t_inflight", NULL, "in flight");
    ms_gauge_add(g, 5);
    ms_gauge_add(g, -2);
    ms_histogram *h = ms_histogram_get("t_latency_seconds", "op=\"x\"", "latency");
    ms_histogram_observe_us(h, 40);
    ms_histogram_observe_us(h, 700);
    ms_histogram_observe_us(h, 2000000000ULL);
    int v = 42;
    ms_metrics_add_collector(collect, &v);

    size_t len;
    char *text = ms_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "# TYPE t_requests_total counter\n"));
    assert_non_null(strstr(text, "t_requests_total{route=\"/a\"} 200000\n"));
    assert_non_null(strstr(text, "t_requests_total{route=\"/b\"} 3\n"));
    assert_non_null(strstr(text, "t_inflight 3\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"x\",le=\"5e-05\"} 1\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"x\",le=\"0.001\"} 2\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"x\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "t_latency_seconds_count{op=\"x\"} 3\n"));
    assert_non_null(strstr(text, "custom_metric 42\n"));
    /* HELP/TYPE once per name */
    char *first = strstr(text, "# HELP t_requests_total");
    assert_null(strstr(first + 1, "# HELP t_requests_total"));
    free(text);

    assert_int_equal(ms_histogram_quantile_us(h, 0.5), 1000);
    ms_metrics_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
