// A persistent pool of worker threads. The calling thread is worker 0;
// parallel_for hands each worker a fixed, deterministic share of the iteration
// space, so the partition (and therefore every result) depends only on the
// thread count, never on timing or placement.
//
// Hand-off, built for 16-64 threads and two sockets, with no mutex. When every
// thread has a CPU (the intended use), the threads form a tree of fan-out
// kFanout rooted at the caller: a job starts when a parent writes the job's
// generation into the `go` word of each of its children; a child starts its own
// children, runs its share, waits until each of its children reports the
// generation in its `done` word, then reports it in its own. Every word is
// written by one thread and read by one other, on a cache line of its own, so a
// job costs O(log n) cache-line transfers on the critical path and no thread
// polls a line that n others write. A waiting thread spins for a while (jobs of
// a forward pass come microseconds apart), then sleeps on the futex of the word
// it waits for; the writer makes the wake-up system call only when a thread
// announced it sleeps on that word.
// With more threads than CPUs every wait sleeps at once (spinning would steal
// the CPU of the thread waited for), and the cost is the number of wake-ups on
// the critical path, which a tree makes deeper: the hand-off is then flat,
// every worker sleeping on one shared word (one system call wakes them all) and
// the last one to finish waking the caller.
//
// Every job runs, on every thread, under the float contract's MXCSR
// (base/float_env.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace xtile {

// How a job is handed out (see the top): `automatic` takes the tree when every
// thread has a CPU and the flat hand-off otherwise; the others force one
// (tests, benchmarks).
enum class HandOff { automatic, tree, flat };

struct PoolOptions {
  // When not empty: worker t (t >= 1) is pinned to CPU cpus[t % cpus.size()].
  // The caller (thread 0) is not touched; pin it with
  // pin_current_thread(cpus[0]) if wanted (cpu/affinity.h builds these lists
  // from --cpu-mask and --numa).
  std::vector<int> cpus;
  HandOff hand_off = HandOff::automatic;
};

class ThreadPool {
 public:
  static constexpr int kFanout = 4;  // children per thread in the hand-off tree

  explicit ThreadPool(int n_threads, const PoolOptions& options = {});  // n_threads >= 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  HandOff hand_off() const { return flat_ ? HandOff::flat : HandOff::tree; }

  // Jobs handed out so far (run() calls and parallel_for() calls of more than
  // one grain): the hand-offs a forward pass pays for, counted by the caller's
  // thread (read it there too).
  uint64_t jobs() const { return jobs_; }

  // Runs fn(thread_index, n_threads) on every worker (the caller is index 0)
  // and returns when all are done. An exception thrown by any worker is
  // rethrown here (the first one).
  void run(const std::function<void(int thread, int n_threads)>& fn);

  // Splits [begin, end) into n_threads contiguous chunks, chunk boundaries at
  // begin + j * grain (except at `end`), thread t gets chunk t; fn(chunk_begin,
  // chunk_end, thread) is called for non-empty chunks only, and a range of a
  // single grain runs directly on the caller.
  void parallel_for(int64_t begin, int64_t end, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)>& fn);

  // Called by thread `thread` from inside a job: the bytes [begin, begin + bytes) that its share
  // of a later job will read. While that thread then waits (for its next job, or for its
  // children to finish this one) it prefetches them into its L2 a few lines per poll, so that
  // memory does not sit idle while the slowest thread of a memory-bound step (a GEMV) finishes
  // or while the caller runs a serial step. A later call replaces the region; prefetching never
  // delays a wake-up by more than one poll and cannot change any result.
  void prefetch_while_waiting(int thread, const void* begin, size_t bytes);

 private:
  // One thread's words. `go` and `done` are on separate lines: the parent
  // writes go and polls done, the thread polls go and writes done. Each
  // *_sleeping count sits beside its word: it is written by the one thread that
  // may wait on the word and read by the one that writes it.
  struct alignas(64) Slot {
    std::atomic<uint32_t> go{0};  // generation to run, from the parent
    std::atomic<uint32_t> go_sleeping{0};
    alignas(64) std::atomic<uint32_t> done{0};  // generation finished, subtree included
    std::atomic<uint32_t> done_sleeping{0};
    // prefetch_while_waiting's region, read and written by this slot's thread only.
    alignas(64) const char* prefetch_next = nullptr;
    const char* prefetch_end = nullptr;
  };

  void worker_loop(int index, int cpu);
  // Thread `self` waits until `word` differs from `old` (spinning first, prefetching its
  // region between polls, then on its futex, counted in `sleepers` while asleep) and returns
  // the word's new value.
  uint32_t wait_change(int self, std::atomic<uint32_t>& word, uint32_t old,
                       std::atomic<uint32_t>& sleepers);
  // Stores `value` into `word` and wakes its waiters if any announced a sleep.
  static void publish(std::atomic<uint32_t>& word, uint32_t value, std::atomic<uint32_t>& sleepers);
  // Starts the children of `index` on generation `gen`; waits for them to
  // finish it.
  void start_children(int index, uint32_t gen);
  void wait_children(int index, uint32_t gen);
  void record_error(std::exception_ptr e);
  void stop_workers();

  int n_threads_;
  bool flat_ = false;  // oversubscribed: the flat hand-off (see the top)
  uint64_t jobs_ = 0;
  uint32_t generation_ = 0;                // the last job's; written and read by the caller only
  std::chrono::nanoseconds spin_time_{0};  // 0 when oversubscribed (more threads than CPUs)
  std::unique_ptr<Slot[]> slots_;          // the tree hand-off's words
  // The flat hand-off's words: the generation all workers wait on, its sleeper
  // count (written only by threads going to sleep, so not on the polled line),
  // the count of workers still running, and the word the caller waits on.
  alignas(64) std::atomic<uint32_t> flat_go_{0};
  alignas(64) std::atomic<uint32_t> flat_go_sleepers_{0};
  alignas(64) std::atomic<int> flat_pending_{0};
  alignas(64) std::atomic<uint32_t> flat_done_{0};
  std::atomic<uint32_t> flat_done_sleepers_{0};
  std::vector<std::thread> threads_;
  // Written by the caller before the first go of a job; workers read it after
  // acquiring their go (a chain of release/acquire pairs down the tree).
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<bool> stop_{false};
  // Rejects nested or concurrent run() calls, which would deadlock or mix jobs.
  std::atomic<bool> running_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// The deterministic partition parallel_for uses: chunk t of n over [begin, end)
// with `grain`.
void partition_range(int64_t begin, int64_t end, int64_t grain, int t, int n, int64_t* chunk_begin,
                     int64_t* chunk_end);

}  // namespace xtile
