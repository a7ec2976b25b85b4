#include "cpu/futex.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#endif

namespace xtile {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the futex word is the atomic's own storage");

#if defined(__linux__)

void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
  // EAGAIN (the word changed already) and EINTR are both "re-check": nothing to handle here.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

#else

void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
  word.wait(expected, std::memory_order_seq_cst);
}

void futex_wake_all(std::atomic<uint32_t>& word) {
  word.notify_all();
}

#endif

}  // namespace xtile
