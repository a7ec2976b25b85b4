// Sleeping on a 32-bit atomic word: the Linux futex system call (private to the process), or
// std::atomic::wait/notify elsewhere. The thread pool's wait/wake primitive.
#pragma once

#include <atomic>
#include <cstdint>

namespace xtile {

// Blocks while `word` holds `expected`. May return spuriously or before the value changes
// (a signal): callers re-check the word.
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected);

// Wakes every thread blocked in futex_wait on `word`.
void futex_wake_all(std::atomic<uint32_t>& word);

}  // namespace xtile
