/* cnnlab native kernels: the allocation calls of kernels.c and conv.c.
 *
 * Tests build a copy with -DCNNLAB_TEST_NO_MEMORY in which every allocation fails, to
 * check that each entry point returns -1 and the Python side falls back to PyTorch. */
#ifndef CNNLAB_ALLOC_H
#define CNNLAB_ALLOC_H
#include <stdlib.h>
#ifdef CNNLAB_TEST_NO_MEMORY
#define CNNLAB_MALLOC(n) ((void)(n), (void *)NULL)
#define CNNLAB_MEMALIGN(p, a, n) ((void)(p), (void)(a), (void)(n), 12)
#else
#define CNNLAB_MALLOC(n) malloc(n)
#define CNNLAB_MEMALIGN(p, a, n) posix_memalign(p, a, n)
#endif
#endif
