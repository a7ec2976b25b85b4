// Persistent worker pool with a spin-then-sleep barrier. All cross-thread state is atomics or
// mutex-protected, so the pool is clean under ThreadSanitizer.
#include "cpu/thread_pool.h"

#include <pthread.h>

#include <chrono>
#include <string>
#include <system_error>

#include "base/error.h"
#include "base/float_env.h"
#include "cpu/cpu_caps.h"

namespace xtile {
namespace {

// How long a waiting thread polls before it sleeps. Jobs in a forward pass come a few to tens of
// microseconds apart; a futex wake-up costs roughly as much, so polling ~100 µs keeps back-to-back
// jobs off the kernel while an idle pool still stops burning CPU almost at once.
constexpr std::chrono::nanoseconds kSpinTime = std::chrono::microseconds(100);

inline void cpu_relax() {
  __builtin_ia32_pause();
}

// Polls `done` until it returns true or `budget` has passed; returns its last value. The clock
// is read every 64 polls (PAUSE lasts from ~10 to ~150 cycles depending on the core), which keeps
// the bound in time rather than in iterations.
template <typename Done>
bool spin_until(std::chrono::nanoseconds budget, Done done) {
  if (budget.count() <= 0) return done();
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (uint32_t i = 1;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() >= deadline) return done();
  }
}

// Marks the pool busy for the lifetime of one run()/parallel_for(); a nested or concurrent call
// would otherwise deadlock (workers cannot take a second job) or overwrite the running one.
class BusyGuard {
 public:
  explicit BusyGuard(std::atomic<bool>& flag) : flag_(flag) {
    if (flag_.exchange(true, std::memory_order_acquire)) {
      fail(
          "ThreadPool: run()/parallel_for() called while the pool is already running a job "
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
  // Whole grains (the last one may be partial) are dealt out as evenly as possible: the first
  // `extra` threads get one more. Boundaries are begin + j * grain, so only the chunk that ends
  // at `end` can hold a partial grain, and a thread may get nothing when grains < threads.
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

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1) fail("ThreadPool: n_threads must be >= 1, got ", n_threads);
  // Polling only pays when every thread has a core; oversubscribed, a spinning thread steals the
  // time slice of the thread it waits for, so sleep at once instead.
  spin_time_ = n_threads <= cpu_caps().logical_cpus ? kSpinTime : std::chrono::nanoseconds(0);
  threads_.reserve(n_threads - 1);
  try {
    for (int i = 1; i < n_threads; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
  } catch (const std::system_error& e) {
    stop_.store(true, std::memory_order_seq_cst);
    { std::lock_guard<std::mutex> lock(mutex_); }
    wake_.notify_all();
    for (std::thread& th : threads_) th.join();
    fail("ThreadPool: could not start worker thread ", threads_.size() + 1, " of ", n_threads, ": ",
         e.what());
  }
}

ThreadPool::~ThreadPool() {
  // No job can be in flight (run() returns only when all workers are done), so every worker is
  // spinning or sleeping in wait_for_job(), and both paths watch stop_.
  stop_.store(true, std::memory_order_seq_cst);
  { std::lock_guard<std::mutex> lock(mutex_); }
  wake_.notify_all();
  for (std::thread& th : threads_) th.join();
}

uint64_t ThreadPool::wait_for_job(uint64_t seen) {
  auto ready = [&] {
    return generation_.load(std::memory_order_acquire) != seen ||
           stop_.load(std::memory_order_acquire);
  };
  if (!spin_until(spin_time_, ready)) {
    // Announce the sleep before checking under the lock; run() bumps generation_ before reading
    // sleepers_, so at least one side sees the other (all four operations are seq_cst).
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] {
        return generation_.load(std::memory_order_seq_cst) != seen ||
               stop_.load(std::memory_order_seq_cst);
      });
    }
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  }
  // A new job cannot start before this worker finishes the current one, so the generation is
  // exactly seen + 1 here (or unchanged when stopping).
  return generation_.load(std::memory_order_acquire);
}

void ThreadPool::worker_loop(int index) {
  {
    // Named threads make profiles and debugger sessions readable; failure is harmless.
    const std::string name = "xtile-w" + std::to_string(index);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  }
  // A new thread inherits its creator's MXCSR, which a host may have set to flush denormals or
  // round otherwise; this thread only ever runs xtile's jobs, so it keeps the contract's.
  write_mxcsr(contract_mxcsr(read_mxcsr()));
  uint64_t seen = 0;
  for (;;) {
    const uint64_t gen = wait_for_job(seen);
    if (gen == seen) return;  // woken by stop_ with no new job
    seen = gen;
    try {
      ContractFloatEnv env;  // a job that changed MXCSR cannot leak it into the next one
      (*job_)(index, n_threads_);
    } catch (...) {
      record_error(std::current_exception());
    }
    // The last worker to finish wakes the caller if it went to sleep (Dekker pair with
    // wait_for_workers: our decrement, then our read of caller_sleeping_, both seq_cst).
    if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_sleeping_.load(std::memory_order_seq_cst)) {
      { std::lock_guard<std::mutex> lock(done_mutex_); }
      done_.notify_one();
    }
  }
}

void ThreadPool::wait_for_workers() {
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (spin_until(spin_time_, done)) return;
  caller_sleeping_.store(true, std::memory_order_seq_cst);
  {
    std::unique_lock<std::mutex> lock(done_mutex_);
    done_.wait(lock, [&] { return pending_.load(std::memory_order_seq_cst) == 0; });
  }
  caller_sleeping_.store(false, std::memory_order_relaxed);
}

void ThreadPool::record_error(std::exception_ptr e) {
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!error_) error_ = std::move(e);
}

void ThreadPool::run(const std::function<void(int thread, int n_threads)>& fn) {
  BusyGuard busy(running_);
  // The caller's share runs under the contract's MXCSR too; the caller gets its own back.
  ContractFloatEnv env;
  ++jobs_;
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // Publishes job_ and pending_ (seq_cst includes release) to workers that acquire generation_.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    // Taking the lock orders this wake-up after any sleeper's predicate check, so none is lost.
    { std::lock_guard<std::mutex> lock(mutex_); }
    wake_.notify_all();
  }
  try {
    fn(0, n_threads_);
  } catch (...) {
    record_error(std::current_exception());
  }
  // Wait even when our own share threw: workers still hold a reference to fn.
  wait_for_workers();
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
    // partition_range gives the single grain to thread 0 (the caller): skip the hand-off.
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
