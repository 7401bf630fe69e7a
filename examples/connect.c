/* SPDX-License-Identifier: Apache-2.0 */
/*
 * connect.c - connect to a cluster, ask a node its version, list the hosts
 * the session found.
 */
#include "example.h"

int main(int argc, char **argv)
{
    printf("msgstore-cql %s (headers %s)\n", cql_version_string(), MSGSTORE_VERSION_STRING);

    cql_options o;
    example_options(&o, argc, argv);
    cql_sync *c;
    cql_status st;
    if (cql_sync_connect(&o, &c, &st) != 0)
        example_die("connect", &st);

    cql_result *res;
    if (cql_sync_query(c, "SELECT release_version, cluster_name FROM system.local", &res, &st) != 0)
        example_die("select", &st);
    cql_str version, cluster;
    if (cql_result_next_row(res) != 0 || cql_row_get_text(res, 0, &version) != 0 ||
        cql_row_get_text(res, 1, &cluster) != 0) {
        fprintf(stderr, "system.local: no row\n");
        return 1;
    }
    printf("connected to %.*s, cluster '%.*s' (answered by %s)\n", (int)version.len, version.ptr,
           (int)cluster.len, cluster.ptr, st.host);
    cql_result_destroy(res);

    cql_host_info hosts[16];
    size_t n = cql_sync_hosts(c, hosts, 16);
    for (size_t i = 0; i < n && i < 16; i++)
        printf("host %s:%d dc=%s rack=%s %s\n", hosts[i].address, hosts[i].port, hosts[i].dc,
               hosts[i].rack, hosts[i].up ? "up" : "down");
    cql_sync_close(c);
    return 0;
}
