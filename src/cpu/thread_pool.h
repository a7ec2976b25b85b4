// A persistent pool of worker threads. The calling thread is worker 0; parallel_for hands each
// worker a fixed, deterministic share of the iteration space, so the partition (and therefore
// every result) depends only on the thread count, never on timing. Workers wait between jobs on
// a barrier that spins briefly (jobs in a forward pass come microseconds apart) then sleeps.
// Every job runs, on every thread, under the float contract's MXCSR (base/float_env.h).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace xtile {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads >= 1 (1: no extra threads)
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Jobs handed out so far (run() calls and parallel_for() calls of more than one grain): the
  // hand-offs a forward pass pays for, counted by the caller's thread (read it there too).
  uint64_t jobs() const { return jobs_; }

  // Runs fn(thread_index, n_threads) on every worker (the caller is index 0) and returns when
  // all are done. An exception thrown by any worker is rethrown here (the first one).
  void run(const std::function<void(int thread, int n_threads)>& fn);

  // Splits [begin, end) into n_threads contiguous chunks, chunk boundaries at begin + j * grain
  // (except at `end`), thread t gets chunk t; fn(chunk_begin, chunk_end, thread) is called for
  // non-empty chunks only, and a range of a single grain runs directly on the caller.
  void parallel_for(int64_t begin, int64_t end, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker_loop(int index);
  // Blocks until generation_ differs from `seen` or stop_ is set, and returns generation_: spins
  // for spin_time_ (jobs in a forward pass come microseconds apart), then sleeps on wake_.
  uint64_t wait_for_job(uint64_t seen);
  // Blocks the caller until pending_ reaches 0: spins briefly, then sleeps on done_.
  void wait_for_workers();
  void record_error(std::exception_ptr e);

  int n_threads_;
  uint64_t jobs_ = 0;
  std::chrono::nanoseconds spin_time_{0};  // 0 when oversubscribed (more threads than CPUs)
  std::vector<std::thread> threads_;
  // Job hand-off: job_ is written before generation_ is bumped (release) and read after it is
  // observed (acquire). sleepers_ counts workers that may be blocked on wake_, so that run()
  // only takes mutex_ and notifies when someone sleeps (seq_cst on both sides: a Dekker pair).
  std::mutex mutex_;
  std::condition_variable wake_;
  // generation_ (polled by idle workers) and pending_ (written by finishing workers) live on
  // separate cache lines so that one worker finishing does not disturb the others' polling.
  alignas(64) std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int, int)>* job_ = nullptr;
  // Completion: each worker decrements pending_ (seq_cst); the one reaching 0 wakes the caller
  // if caller_sleeping_ says it blocked on done_ (again a seq_cst Dekker pair).
  alignas(64) std::atomic<int> pending_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::mutex done_mutex_;
  std::condition_variable done_;
  // Rejects nested or concurrent run() calls, which would deadlock or mix jobs.
  std::atomic<bool> running_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// The deterministic partition parallel_for uses: chunk t of n over [begin, end) with `grain`.
void partition_range(int64_t begin, int64_t end, int64_t grain, int t, int n, int64_t* chunk_begin,
                     int64_t* chunk_end);

}  // namespace xtile
