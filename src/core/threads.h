// Thread count for LibTorch's intra-op pool: every core this process may use, unless told otherwise.
#pragma once

namespace luminars {

// Cores available to this process (its CPU affinity mask), at least 1.
int available_cores();

// Sets the intra-op thread count to `requested` (> 0) or to available_cores(); returns the count.
int configure_threads(int requested = 0);

}  // namespace luminars
