/* SL_ASSERT: the check for programmer errors. Always on, in every build, because a broken invariant in a
 * storage engine must stop the process before it writes something wrong to disk. */
#ifndef SL_BROKER_ASSERT_H
#define SL_BROKER_ASSERT_H

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
