// What happens when a mapped file shrinks under the engine: the kernel raises SIGBUS on the first
// read past its new end. The guard turns that into the engine's one-line format error naming the
// file, and exit status 2, instead of a silent crash (status 135).
//
// A fault cannot be turned into an exception (the faulting thread may be inside a kernel loop, an
// OpenBLAS worker or a thread pool), so the process ends: the same line and status as the CLI's
// for any other truncated file. Faults at addresses outside every mapped file are not ours and
// go to the default action.
#pragma once
#include <cstdint>
#include <string>

namespace wpf::map_guard {

// Records [begin, begin + size) as the mapping of `path` (installs the handler on first use);
// returns a slot for forget(), or -1 when every slot is taken (the mapping is then unguarded).
int remember(const uint8_t* begin, uint64_t size, const std::string& path);
void forget(int slot);

}  // namespace wpf::map_guard
