// Thread count for LibTorch's intra-op pool: every core this process may use, unless told otherwise.
#pragma once

namespace luminars {

// Cores available to this process (its CPU affinity mask), at least 1.
int available_cores();

// OpenBLAS, when it is the BLAS behind LibTorch, to one thread (see threads.cpp); a no-op otherwise.
void quiet_blas_threads();

// Sets the intra-op thread count to `requested` (> 0) or to available_cores(), with OpenBLAS's
// own pool at one thread; returns the count.
int configure_threads(int requested = 0);

}  // namespace luminars
