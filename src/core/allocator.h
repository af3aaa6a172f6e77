// The C allocator under low-memory generation. glibc raises its mmap threshold to the size of each
// big block freed (up to 32 MiB), so after a model part is released the next ones come from the
// heap, whose freed pages stay with the process: peak memory grows part after part. In low-memory
// mode blocks of 64 KiB and up are mapped each on its own (freed: given back at once), and the
// heap is trimmed after a part is released. No-ops on other C libraries.
#pragma once

namespace luminars {

void return_freed_memory_promptly();
void trim_freed_memory();

}  // namespace luminars
