/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error.h - error codes shared by every layer. They are public (the CQL
 * client and the store return them): the definitions live in
 * include/msgstore/error.h.
 */
#ifndef MS_CORE_ERROR_H
#define MS_CORE_ERROR_H

#include "msgstore/error.h"

#endif
