/* SL_ASSERT: the one check for programmer errors, in every layer. Always on, in every build, because a broken
 * invariant in a storage engine must stop the process before it writes something wrong to disk. Never wrap a call
 * that does work in it: the condition is for checking, and reads as such. */
#ifndef SL_BASE_ASSERT_H
#define SL_BASE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define SL_ASSERT(cond)                                                                              \
	do {                                                                                         \
		if (!(cond)) {                                                                       \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                     \
		}                                                                                    \
	} while (0)

#endif
