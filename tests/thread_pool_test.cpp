// ThreadPool: deterministic partition, exactly-once coverage, no lost wake-ups under thousands of
// back-to-back jobs (both the spinning and the sleeping hand-off), exceptions reaching the caller,
// and clean shutdown. Written to be clean under ThreadSanitizer (atomics for shared counters).
#include "cpu/thread_pool.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "cpu/affinity.h"
#include "cpu/cpu_caps.h"

namespace xtile {
namespace {
namespace thread_pool_test {  // unity batches: CMakeLists.txt

struct Chunk {
  int64_t begin = -1, end = -1;
  bool operator==(const Chunk&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Chunk& c) {
    return os << "[" << c.begin << ", " << c.end << ")";
  }
};

std::vector<Chunk> expected_chunks(int64_t begin, int64_t end, int64_t grain, int n) {
  std::vector<Chunk> out(n);
  for (int t = 0; t < n; ++t) partition_range(begin, end, grain, t, n, &out[t].begin, &out[t].end);
  return out;
}

// Runs `body` on another thread and aborts the whole test binary if it has not finished within
// `limit`: a lost wake-up would otherwise hang until the CTest timeout, with no hint of where.
template <typename Body>
void with_watchdog(std::chrono::seconds limit, const char* what, Body body) {
  auto done = std::async(std::launch::async, body);
  if (done.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "%s did not finish within %lld s: lost wake-up or deadlock\n", what,
                 static_cast<long long>(limit.count()));
    std::abort();
  }
  done.get();  // rethrows assertion-carrying exceptions, if any
}

TEST(ThreadPoolPartition, HandComputedChunks) {
  // 100 elements in grains of 8: 13 grains (the last holds 4) dealt 5, 4, 4.
  EXPECT_EQ(expected_chunks(0, 100, 8, 3), (std::vector<Chunk>{{0, 40}, {40, 72}, {72, 100}}));
  // Boundaries are counted from `begin`.
  EXPECT_EQ(expected_chunks(5, 105, 8, 3), (std::vector<Chunk>{{5, 45}, {45, 77}, {77, 105}}));
  // Fewer grains than threads: the last threads get empty chunks at `end`.
  EXPECT_EQ(expected_chunks(0, 20, 16, 4),
            (std::vector<Chunk>{{0, 16}, {16, 20}, {20, 20}, {20, 20}}));
  // Empty and reversed ranges give empty chunks.
  EXPECT_EQ(expected_chunks(7, 7, 1, 2), (std::vector<Chunk>{{7, 7}, {7, 7}}));
  EXPECT_EQ(expected_chunks(9, 3, 1, 2), (std::vector<Chunk>{{9, 9}, {9, 9}}));
  // Grain 1, 10 over 4: 3, 3, 2, 2.
  EXPECT_EQ(expected_chunks(0, 10, 1, 4), (std::vector<Chunk>{{0, 3}, {3, 6}, {6, 8}, {8, 10}}));
}

TEST(ThreadPoolPartition, PropertiesOverManyShapes) {
  for (int64_t begin : {0, 3, 64}) {
    for (int64_t len = 0; len < 300; len += 7) {
      for (int64_t grain : {1, 2, 3, 16, 32, 100}) {
        for (int n = 1; n <= 9; ++n) {
          const std::vector<Chunk> c = expected_chunks(begin, begin + len, grain, n);
          int64_t at = begin, min_units = INT64_MAX, max_units = 0;
          for (int t = 0; t < n; ++t) {
            ASSERT_EQ(c[t].begin, at);
            ASSERT_LE(c[t].begin, c[t].end);
            if (c[t].end != begin + len) {
              ASSERT_EQ((c[t].end - begin) % grain, 0);
            }
            const int64_t units = (c[t].end - c[t].begin + grain - 1) / grain;
            min_units = std::min(min_units, units);
            max_units = std::max(max_units, units);
            at = c[t].end;
          }
          ASSERT_EQ(at, begin + len);
          ASSERT_LE(max_units - min_units, 1) << "len " << len << " grain " << grain << " n " << n;
        }
      }
    }
  }
}

TEST(ThreadPoolPartition, RejectsBadArguments) {
  int64_t b = 0, e = 0;
  EXPECT_THROW(partition_range(0, 10, 0, 0, 1, &b, &e), Error);
  EXPECT_THROW(partition_range(0, 10, 1, 2, 2, &b, &e), Error);
  EXPECT_THROW(partition_range(0, 10, 1, -1, 2, &b, &e), Error);
  EXPECT_THROW(partition_range(0, 10, 1, 0, 0, &b, &e), Error);
  EXPECT_THROW(ThreadPool(0), Error);
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(0, 10, 0, [](int64_t, int64_t, int) {}), Error);
}

TEST(ThreadPool, RunCallsEveryIndexOnceWithTheCallerAsZero) {
  for (int n = 1; n <= 8; ++n) {
    ThreadPool pool(n);
    EXPECT_EQ(pool.size(), n);
    std::vector<std::atomic<int>> calls(n);
    std::atomic<bool> caller_is_zero{false};
    const std::thread::id me = std::this_thread::get_id();
    for (int rep = 0; rep < 3; ++rep) {
      pool.run([&](int t, int nt) {
        ASSERT_EQ(nt, n);
        calls[t].fetch_add(1, std::memory_order_relaxed);
        if (t == 0) caller_is_zero.store(std::this_thread::get_id() == me);
      });
    }
    for (int t = 0; t < n; ++t) EXPECT_EQ(calls[t].load(), 3) << "n " << n << " t " << t;
    EXPECT_TRUE(caller_is_zero.load());
  }
}

TEST(ThreadPool, ParallelForVisitsEachIndexOnceInThePartitionChunks) {
  struct Shape {
    int64_t begin, end, grain;
  };
  const Shape shapes[] = {{0, 1000, 1}, {0, 1000, 16}, {3, 517, 32}, {0, 5, 1},
                          {0, 40, 16},  {10, 11, 4},   {0, 4096, 64}};
  for (int n = 1; n <= 8; ++n) {
    ThreadPool pool(n);
    for (const Shape& s : shapes) {
      std::vector<Chunk> first;
      for (int rep = 0; rep < 3; ++rep) {
        std::vector<std::atomic<int>> visits(s.end);
        std::vector<Chunk> got(n);
        std::vector<std::atomic<int>> calls(n);
        pool.parallel_for(s.begin, s.end, s.grain, [&](int64_t b, int64_t e, int t) {
          calls[t].fetch_add(1, std::memory_order_relaxed);
          got[t] = {b, e};  // one call per thread index: no two threads write the same slot
          for (int64_t i = b; i < e; ++i) visits[i].fetch_add(1, std::memory_order_relaxed);
        });
        const std::vector<Chunk> want = expected_chunks(s.begin, s.end, s.grain, n);
        for (int t = 0; t < n; ++t) {
          // Empty chunks are not called; non-empty ones are called exactly once.
          const bool empty = want[t].begin == want[t].end;
          ASSERT_EQ(calls[t].load(), empty ? 0 : 1) << "n " << n << " t " << t;
          if (!empty) {
            ASSERT_EQ(got[t], want[t]) << "n " << n << " t " << t;
          }
        }
        for (int64_t i = 0; i < s.end; ++i) {
          ASSERT_EQ(visits[i].load(), i >= s.begin ? 1 : 0) << "index " << i << " n " << n;
        }
        if (rep == 0) first = got;
        ASSERT_EQ(got, first) << "partition changed between runs";
      }
    }
    // Empty range: nothing is called.
    std::atomic<int> calls{0};
    pool.parallel_for(5, 5, 1, [&](int64_t, int64_t, int) { calls.fetch_add(1); });
    pool.parallel_for(5, 2, 1, [&](int64_t, int64_t, int) { calls.fetch_add(1); });
    EXPECT_EQ(calls.load(), 0);
  }
}

TEST(ThreadPool, ThousandsOfBackToBackJobsComplete) {
  // Tiny jobs back to back exercise the spinning hand-off; every 64th job a pause longer than the
  // spin window sends the workers to sleep, and a slow worker sends the caller to sleep, so both
  // futex paths are taken too. A lost wake-up trips the watchdog.
  with_watchdog(std::chrono::seconds(60), "ThousandsOfBackToBackJobsComplete", [] {
    for (int n : {2, 3, 4, 8}) {
      ThreadPool pool(n);
      std::atomic<int64_t> total{0};
      const int jobs = 3000;
      const auto start = std::chrono::steady_clock::now();
      for (int j = 0; j < jobs; ++j) {
        if (j % 64 == 63) std::this_thread::sleep_for(std::chrono::microseconds(300));
        const bool slow = j % 256 == 128;
        pool.run([&](int t, int) {
          if (slow && t == n - 1) std::this_thread::sleep_for(std::chrono::microseconds(500));
          total.fetch_add(t + 1, std::memory_order_relaxed);
        });
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_EQ(total.load(), int64_t{jobs} * n * (n + 1) / 2) << "n " << n;
      EXPECT_LT(secs, 15.0) << "n " << n << ": " << jobs << " jobs took " << secs << " s";
    }
  });
}

TEST(ThreadPool, PrefetchWhileWaitingNeverFaultsAndKeepsEveryJob) {
  // Each job leaves every thread a region to prefetch while it waits: even threads a slice of a
  // real buffer, odd threads an address range that is not mapped (the matmul driver estimates
  // shares, and a prefetch must never fault wherever it points). Jobs, sleeps and the spin
  // windows interleave as in a forward pass; every job still runs once on every thread.
  with_watchdog(std::chrono::seconds(60), "PrefetchWhileWaitingNeverFaultsAndKeepsEveryJob", [] {
    std::vector<char> buffer(size_t{16} << 20, 1);
    const auto* unmapped = reinterpret_cast<const char*>(uintptr_t{1} << 46);
    for (HandOff mode : {HandOff::tree, HandOff::flat})
      for (int n : {2, 3, 8}) {
        ThreadPool pool(n, PoolOptions{{}, mode});
        std::atomic<int64_t> total{0};
        const int jobs = 1500;
        for (int j = 0; j < jobs; ++j) {
          if (j % 100 == 99) std::this_thread::sleep_for(std::chrono::microseconds(300));
          pool.run([&](int t, int nt) {
            const size_t share = buffer.size() / static_cast<size_t>(nt);
            if (t % 2 == 0)
              pool.prefetch_while_waiting(t, buffer.data() + share * static_cast<size_t>(t), share);
            else
              pool.prefetch_while_waiting(t, unmapped + (static_cast<size_t>(t) << 20),
                                          size_t{1} << 20);
            total.fetch_add(t + 1, std::memory_order_relaxed);
          });
        }
        EXPECT_EQ(total.load(), int64_t{jobs} * n * (n + 1) / 2)
            << "n " << n << " flat " << (mode == HandOff::flat);
      }
  });
}

TEST(ThreadPool, WorkerExceptionReachesTheCallerAndThePoolStaysUsable) {
  for (int n : {2, 4, 8}) {
    ThreadPool pool(n);
    std::atomic<int> finished{0};
    try {
      pool.run([&](int t, int nt) {
        if (t == nt - 1) throw std::runtime_error("boom from worker " + std::to_string(t));
        finished.fetch_add(1);
      });
      FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "boom from worker " + std::to_string(n - 1));
    }
    // run() returned only after the other workers finished their share.
    EXPECT_EQ(finished.load(), n - 1);

    // The caller's own exception is also rethrown, after the workers are done.
    finished = 0;
    EXPECT_THROW(pool.run([&](int t, int) {
      if (t == 0) throw Error("caller failed");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      finished.fetch_add(1);
    }),
                 Error);
    EXPECT_EQ(finished.load(), n - 1);

    // Every thread throws: exactly one exception comes out.
    EXPECT_THROW(pool.run([](int t, int) { throw std::runtime_error(std::to_string(t)); }),
                 std::runtime_error);

    // And the pool still works, with no stale error.
    std::atomic<int> sum{0};
    pool.parallel_for(0, 100, 1,
                      [&](int64_t b, int64_t e, int) { sum.fetch_add(static_cast<int>(e - b)); });
    EXPECT_EQ(sum.load(), 100);
    pool.run([](int, int) {});
  }
}

TEST(ThreadPool, NestedRunIsAnErrorNotADeadlock) {
  with_watchdog(std::chrono::seconds(30), "NestedRunIsAnErrorNotADeadlock", [] {
    ThreadPool pool(3);
    EXPECT_THROW(pool.run([&](int t, int) {
      if (t == 0) pool.run([](int, int) {});
    }),
                 Error);
    EXPECT_THROW(pool.run([&](int t, int) {
      if (t == 2) pool.parallel_for(0, 10, 1, [](int64_t, int64_t, int) {});
    }),
                 Error);
    std::atomic<int> calls{0};
    pool.run([&](int, int) { calls.fetch_add(1); });
    EXPECT_EQ(calls.load(), 3);
  });
}

TEST(ThreadPool, DestructionWithIdleWorkersIsClean) {
  with_watchdog(std::chrono::seconds(30), "DestructionWithIdleWorkersIsClean", [] {
    for (int n = 1; n <= 8; ++n) {
      { ThreadPool never_used(n); }
      {
        ThreadPool just_ran(n);  // workers still spinning when destroyed
        just_ran.run([](int, int) {});
      }
      {
        ThreadPool slept(n);  // workers asleep on their futex when destroyed
        slept.run([](int, int) {});
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  });
}

// Both hand-offs at the sizes of a Xeon, whatever this machine has: every index runs once per
// job, including the leaves of the tree's partial last levels; some jobs come after a pause
// (workers asleep) and some have a slow thread (its parent, or the caller, asleep). Here (a
// few CPUs) these pools are oversubscribed, so waits sleep on futexes and hand-offs wake
// threads: a lost wake-up trips the watchdog.
TEST(ThreadPool, BothHandOffsAtManyThreads) {
  with_watchdog(std::chrono::seconds(180), "BothHandOffsAtManyThreads", [] {
    for (HandOff mode : {HandOff::tree, HandOff::flat})
      for (int n : {2, 5, 6, 17, 21, 22, 37, 64}) {
        ThreadPool pool(n, PoolOptions{{}, mode});
        ASSERT_EQ(pool.hand_off(), mode);
        std::vector<std::atomic<int>> calls(n);
        const int jobs = 50;
        for (int j = 0; j < jobs; ++j) {
          if (j % 10 == 9) std::this_thread::sleep_for(std::chrono::microseconds(300));
          pool.run([&](int t, int nt) {
            ASSERT_EQ(nt, n);
            if (j % 7 == 3 && t == n - 1)
              std::this_thread::sleep_for(std::chrono::microseconds(200));
            calls[t].fetch_add(1, std::memory_order_relaxed);
          });
        }
        for (int t = 0; t < n; ++t)
          ASSERT_EQ(calls[t].load(), jobs)
              << "n " << n << " t " << t << " flat " << (mode == HandOff::flat);
        EXPECT_EQ(pool.jobs(), static_cast<uint64_t>(jobs));
        // An exception from a leaf still reaches the caller after every thread finished.
        std::atomic<int> finished{0};
        EXPECT_THROW(pool.run([&](int t, int nt) {
          if (t == nt - 1) throw std::runtime_error("leaf");
          finished.fetch_add(1);
        }),
                     std::runtime_error);
        EXPECT_EQ(finished.load(), n - 1);
      }
  });
}

TEST(ThreadPool, AutomaticHandOffIsTheTreeUnlessOversubscribed) {
  const int cpus = cpu_caps().logical_cpus;
  EXPECT_EQ(ThreadPool(cpus).hand_off(), HandOff::tree);
  EXPECT_EQ(ThreadPool(cpus + 1).hand_off(), HandOff::flat);
  EXPECT_EQ(ThreadPool(1).hand_off(), HandOff::tree);
}

TEST(ThreadPool, JobsCountsHandOffsOnly) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.jobs(), 0u);
  pool.run([](int, int) {});
  pool.parallel_for(0, 100, 10, [](int64_t, int64_t, int) {});
  EXPECT_EQ(pool.jobs(), 2u);
  pool.parallel_for(0, 10, 10, [](int64_t, int64_t, int) {});  // one grain: runs on the caller
  pool.parallel_for(0, 0, 1, [](int64_t, int64_t, int) {});    // nothing to do
  EXPECT_EQ(pool.jobs(), 2u);
}

TEST(ThreadPool, WorkersArePinnedToTheGivenCpus) {
  const std::vector<int> allowed = allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  const int cpu = allowed.back();
  ThreadPool pool(3, PoolOptions{{allowed.front(), cpu}});  // worker t on cpus[t % 2]
  std::vector<int> seen(3, -1);
  std::vector<int> mask_size(3, 0);
  pool.run([&](int t, int) {
    seen[t] = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) mask_size[t] = CPU_COUNT(&set);
  });
  EXPECT_EQ(seen[1], cpu);
  EXPECT_EQ(mask_size[1], 1);
  EXPECT_EQ(seen[2], allowed.front());
  EXPECT_EQ(mask_size[2], 1);
  // The caller is left as it was.
  EXPECT_EQ(mask_size[0], static_cast<int>(allowed.size()));
  EXPECT_THROW(ThreadPool(2, PoolOptions{{-1}}), Error);
}

}  // namespace thread_pool_test
}  // namespace
}  // namespace xtile
