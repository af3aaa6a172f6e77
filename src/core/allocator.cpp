#include "core/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace luminars {

void return_freed_memory_promptly() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);  // also fixes the threshold (no more raising)
#endif
}

void trim_freed_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace luminars
