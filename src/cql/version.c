/* SPDX-License-Identifier: Apache-2.0 */
/* version.c - the library's version, for programs to compare with the headers'. */
#include "msgstore/cql.h"

const char *cql_version_string(void)
{
    return MSGSTORE_VERSION_STRING;
}
