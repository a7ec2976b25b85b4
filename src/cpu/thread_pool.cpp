// Persistent worker pool: a tree of per-thread hand-off words, or a flat
// hand-off when oversubscribed (see thread_pool.h). All cross-thread state is
// atomics or mutex-protected, so the pool is clean under ThreadSanitizer.
#include "cpu/thread_pool.h"

#include <pthread.h>

#include <chrono>
#include <string>
#include <system_error>

#include "base/error.h"
#include "base/float_env.h"
#include "cpu/affinity.h"
#include "cpu/cpu_caps.h"
#include "cpu/futex.h"

namespace xtile {
namespace {

// How long a waiting thread polls before it sleeps. Jobs in a forward pass come
// a few to tens of microseconds apart; a futex wake-up costs roughly as much,
// so polling ~100 µs keeps back-to-back jobs off the kernel while an idle pool
// still stops burning CPU almost at once.
constexpr std::chrono::nanoseconds kSpinTime = std::chrono::microseconds(100);

inline void cpu_relax() {
  __builtin_ia32_pause();
}

// Polls `done` until it returns true or `budget` has passed; returns its last
// value. Between polls it calls `work`, and pauses only when that found nothing
// to do. The clock is read every 64 polls (PAUSE lasts from ~10 to ~150 cycles
// depending on the core), which keeps the bound in time rather than in
// iterations.
template <typename Done, typename Work>
bool spin_until(std::chrono::nanoseconds budget, Done done, Work work) {
  if (budget.count() <= 0) return done();
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (uint32_t i = 1;; ++i) {
    if (done()) return true;
    if (!work()) cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() >= deadline) return done();
  }
}

// Marks the pool busy for the lifetime of one run()/parallel_for(); a nested or
// concurrent call would otherwise deadlock (workers cannot take a second job)
// or overwrite the running one.
class BusyGuard {
 public:
  explicit BusyGuard(std::atomic<bool>& flag) : flag_(flag) {
    if (flag_.exchange(true, std::memory_order_acquire)) {
      fail(
          "ThreadPool: run()/parallel_for() called while the pool is already "
          "running a job "
          "(nested or concurrent use of one pool)");
    }
  }
  ~BusyGuard() { flag_.store(false, std::memory_order_release); }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;

 private:
  std::atomic<bool>& flag_;
};

}  // namespace

void partition_range(int64_t begin, int64_t end, int64_t grain, int t, int n, int64_t* chunk_begin,
                     int64_t* chunk_end) {
  if (grain < 1) fail("partition_range: grain must be >= 1, got ", grain);
  if (n < 1 || t < 0 || t >= n) fail("partition_range: thread ", t, " of ", n, " is out of range");
  const int64_t total = end > begin ? end - begin : 0;
  // Whole grains (the last one may be partial) are dealt out as evenly as
  // possible: the first `extra` threads get one more. Boundaries are begin + j
  // * grain, so only the chunk that ends at `end` can hold a partial grain, and
  // a thread may get nothing when grains < threads.
  const int64_t units = total / grain + (total % grain != 0 ? 1 : 0);
  const int64_t base = units / n;
  const int64_t extra = units % n;
  const int64_t first_unit = t * base + (t < extra ? t : extra);
  const int64_t count = base + (t < extra ? 1 : 0);
  const int64_t lo = first_unit * grain;
  const int64_t hi = (first_unit + count) * grain;
  *chunk_begin = begin + (lo < total ? lo : total);
  *chunk_end = begin + (hi < total ? hi : total);
}

ThreadPool::ThreadPool(int n_threads, const PoolOptions& options)
    : n_threads_(n_threads), slots_(n_threads >= 1 ? new Slot[n_threads] : nullptr) {
  if (n_threads < 1) fail("ThreadPool: n_threads must be >= 1, got ", n_threads);
  for (int cpu : options.cpus)
    if (cpu < 0) fail("ThreadPool: CPU ", cpu, " in the pinning list is negative");
  // Polling only pays when every thread has a core; oversubscribed, a spinning
  // thread steals the time slice of the thread it waits for, so sleep at once
  // instead.
  spin_time_ = n_threads <= cpu_caps().logical_cpus ? kSpinTime : std::chrono::nanoseconds(0);
  flat_ = options.hand_off == HandOff::flat ||
          (options.hand_off == HandOff::automatic && spin_time_.count() == 0);
  threads_.reserve(n_threads - 1);
  try {
    for (int i = 1; i < n_threads; ++i) {
      const int cpu =
          options.cpus.empty() ? -1 : options.cpus[static_cast<size_t>(i) % options.cpus.size()];
      threads_.emplace_back([this, i, cpu] { worker_loop(i, cpu); });
    }
  } catch (const std::system_error& e) {
    stop_workers();
    fail("ThreadPool: could not start worker thread ", threads_.size() + 1, " of ", n_threads, ": ",
         e.what());
  }
}

ThreadPool::~ThreadPool() {
  // No job can be in flight (run() returns only when all workers are done), so
  // every worker is waiting on its go word.
  stop_workers();
}

void ThreadPool::stop_workers() {
  stop_.store(true, std::memory_order_seq_cst);
  // Every started worker is woken directly (not through the tree): it sees
  // stop_ and returns.
  if (flat_) {
    publish(flat_go_, flat_go_.load(std::memory_order_relaxed) + 1, flat_go_sleepers_);
  } else {
    for (size_t i = 0; i < threads_.size(); ++i) {
      Slot& s = slots_[i + 1];
      publish(s.go, s.go.load(std::memory_order_relaxed) + 1, s.go_sleeping);
    }
  }
  for (std::thread& th : threads_) th.join();
}

void ThreadPool::publish(std::atomic<uint32_t>& word, uint32_t value,
                         std::atomic<uint32_t>& sleepers) {
  // Dekker pair with wait_change: we store the word then read the count, a
  // waiter increments the count then reads the word (all seq_cst), so at least
  // one of us sees the other's store.
  word.store(value, std::memory_order_seq_cst);
  if (sleepers.load(std::memory_order_seq_cst) != 0) futex_wake_all(word);
}

void ThreadPool::prefetch_while_waiting(int thread, const void* begin, size_t bytes) {
  Slot& s = slots_[thread];
  s.prefetch_next = static_cast<const char*>(begin);
  s.prefetch_end = s.prefetch_next + bytes;
}

uint32_t ThreadPool::wait_change(int self, std::atomic<uint32_t>& word, uint32_t old,
                                 std::atomic<uint32_t>& sleepers) {
  Slot& me = slots_[self];
  auto changed = [&] { return word.load(std::memory_order_acquire) != old; };
  // Four lines per poll: a prefetch that finds the line fill buffers busy stalls until one
  // frees, so a longer burst would delay the reaction to the word by memory latencies.
  auto prefetch = [&] {
    if (me.prefetch_next >= me.prefetch_end) return false;
    for (int line = 0; line < 4; ++line)
      __builtin_prefetch(me.prefetch_next + 64 * line, 0, 2);  // to L2 (prefetcht1)
    me.prefetch_next += 256;
    return true;
  };
  if (!spin_until(spin_time_, changed, prefetch)) {
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    while (word.load(std::memory_order_seq_cst) == old) futex_wait(word, old);
    sleepers.fetch_sub(1, std::memory_order_relaxed);
  }
  return word.load(std::memory_order_acquire);
}

void ThreadPool::start_children(int index, uint32_t gen) {
  const int first = index * kFanout + 1;
  for (int c = first; c < first + kFanout && c < n_threads_; ++c)
    publish(slots_[c].go, gen, slots_[c].go_sleeping);
}

void ThreadPool::wait_children(int index, uint32_t gen) {
  const int first = index * kFanout + 1;
  // Every child finishes every job, so its done word moves from gen - 1 to gen.
  for (int c = first; c < first + kFanout && c < n_threads_; ++c)
    wait_change(index, slots_[c].done, gen - 1, slots_[c].done_sleeping);
}

void ThreadPool::worker_loop(int index, int cpu) {
  {
    // Named threads make profiles and debugger sessions readable; failure is
    // harmless.
    const std::string name = "xtile-w" + std::to_string(index);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  }
  // Pinning is a placement hint: a CPU outside the process's allowed set leaves
  // the thread where the scheduler puts it (affinity.h's lists are built from
  // the allowed set).
  if (cpu >= 0) pin_current_thread(cpu);
  // A new thread inherits its creator's MXCSR, which a host may have set to
  // flush denormals or round otherwise; this thread only ever runs xtile's
  // jobs, so it keeps the contract's.
  write_mxcsr(contract_mxcsr(read_mxcsr()));
  Slot& me = slots_[index];
  uint32_t seen = 0;
  for (;;) {
    const uint32_t gen = flat_ ? wait_change(index, flat_go_, seen, flat_go_sleepers_)
                               : wait_change(index, me.go, seen, me.go_sleeping);
    if (stop_.load(std::memory_order_acquire)) return;
    seen = gen;
    // The children first, so that their wake-ups overlap this thread's own
    // share.
    if (!flat_) start_children(index, gen);
    try {
      ContractFloatEnv env;  // a job that changed MXCSR cannot leak it into the next one
      (*job_)(index, n_threads_);
    } catch (...) {
      record_error(std::current_exception());
    }
    if (flat_) {
      // acq_rel: the last decrement sees every other worker's writes, and
      // publishes them.
      if (flat_pending_.fetch_sub(1, std::memory_order_acq_rel) == 1)
        publish(flat_done_, gen, flat_done_sleepers_);
    } else {
      wait_children(index, gen);
      publish(me.done, gen, me.done_sleeping);
    }
  }
}

void ThreadPool::record_error(std::exception_ptr e) {
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!error_) error_ = std::move(e);
}

void ThreadPool::run(const std::function<void(int thread, int n_threads)>& fn) {
  BusyGuard busy(running_);
  // The caller's share runs under the contract's MXCSR too; the caller gets its
  // own back.
  ContractFloatEnv env;
  ++jobs_;
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  const uint32_t gen = ++generation_;
  // Releases job_ (and flat_pending_) to the workers, directly or down the
  // tree.
  if (flat_) {
    flat_pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    publish(flat_go_, gen, flat_go_sleepers_);
  } else {
    start_children(0, gen);
  }
  try {
    fn(0, n_threads_);
  } catch (...) {
    record_error(std::current_exception());
  }
  // Wait even when our own share threw: workers still hold a reference to fn.
  if (flat_)
    wait_change(0, flat_done_, gen - 1, flat_done_sleepers_);
  else
    wait_children(0, gen);
  job_ = nullptr;
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error = std::move(error_);
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain,
                              const std::function<void(int64_t, int64_t, int)>& fn) {
  if (grain < 1) fail("ThreadPool::parallel_for: grain must be >= 1, got ", grain);
  if (end <= begin) return;
  const int64_t total = end - begin;
  const int64_t units = total / grain + (total % grain != 0 ? 1 : 0);
  if (units == 1) {
    // partition_range gives the single grain to thread 0 (the caller): skip the
    // hand-off.
    BusyGuard busy(running_);
    ContractFloatEnv env;
    fn(begin, end, 0);
    return;
  }
  run([&](int t, int n) {
    int64_t chunk_begin = 0, chunk_end = 0;
    partition_range(begin, end, grain, t, n, &chunk_begin, &chunk_end);
    // Threads left without a grain are not called at all.
    if (chunk_begin < chunk_end) fn(chunk_begin, chunk_end, t);
  });
}

}  // namespace xtile
