// A persistent pool of worker threads. The calling thread is worker 0; parallel_for hands each
// worker a fixed, deterministic share of the iteration space, so the partition (and therefore
// every result) depends only on the thread count, never on timing. Workers wait between jobs on
// a barrier that spins briefly (jobs in a forward pass come microseconds apart) then sleeps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
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

  // Runs fn(thread_index, n_threads) on every worker (the caller is index 0) and returns when
  // all are done. An exception thrown by any worker is rethrown here (the first one).
  void run(const std::function<void(int thread, int n_threads)>& fn);

  // Splits [begin, end) into n_threads contiguous chunks, chunk boundaries multiples of `grain`
  // (except at `end`), thread t gets chunk t; fn(chunk_begin, chunk_end, thread).
  void parallel_for(int64_t begin, int64_t end, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker_loop(int index);
  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int, int)>* job_ = nullptr;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// The deterministic partition parallel_for uses: chunk t of n over [begin, end) with `grain`.
void partition_range(int64_t begin, int64_t end, int64_t grain, int t, int n, int64_t* chunk_begin,
                     int64_t* chunk_end);

}  // namespace xtile
