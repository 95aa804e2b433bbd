// The pool of set_num_threads (core/threads.hpp) and parallel_for's block runner.
//
// One job at a time. The caller publishes a job by storing a new generation in `ticket_`
// (generation << 32 | block count << 16 | next block index); every participant (the caller and the workers) claims
// blocks with a compare-and-swap on the ticket, which fails once the generation has moved on, so
// a late worker can never run a block of the next job with the previous job's function. The job's
// fields are written before the release store of the ticket and read only after a successful
// claim, and the caller does not return (and cannot publish another job) until every block is
// done: the fields are stable while anyone reads them.
//
// Waiting: workers spin (with a pause instruction) for about 50 us after their last block, as a
// training step issues the next op within microseconds, then sleep on a condition variable.
// `sleepers_` and `ticket_` are sequentially consistent, so a worker going to sleep either sees
// the new ticket or is counted by the caller, which then notifies under the mutex.
#include "parallel.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tapegrad/core/blas.hpp"
#include "tapegrad/core/error.hpp"
#include "tapegrad/core/threads.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TAPEGRAD_PAUSE() _mm_pause()
#else
#define TAPEGRAD_PAUSE() std::this_thread::yield()
#endif

namespace tapegrad {
namespace detail {
namespace {

thread_local bool t_in_pool = false;  // a pool worker, or the caller while it runs a job's blocks

// ticket_: generation (bits 32..63) | block count (16..31) | next unclaimed block (0..15).
constexpr std::uint64_t kGenShift = 32, kBlocksShift = 16, kIndexMask = 0xffff;

class Pool {
 public:
  ~Pool() { resize(1); }

  int threads() const noexcept { return threads_.load(std::memory_order_relaxed); }

  void resize(int n) {
    std::lock_guard<std::mutex> run(run_mutex_);
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_.store(true);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stop_.store(false);
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { work(); });
    threads_.store(n, std::memory_order_relaxed);
  }

  // false: the pool is busy with another thread's job (the caller runs the blocks itself).
  // The blocks must not throw (they are kernels over checked buffers).
  bool run(std::size_t n, std::size_t blocks, std::size_t align, ChunkFn fn, void* ctx) {
    std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
    if (!run.owns_lock() || workers_.empty() || blocks > kIndexMask) return false;
    n_ = n;
    align_ = align;
    fn_ = fn;
    ctx_ = ctx;
    done_.store(0, std::memory_order_relaxed);
    const std::uint64_t gen = (ticket_.load(std::memory_order_relaxed) >> kGenShift) + 1;
    ticket_.store(gen << kGenShift | std::uint64_t(blocks) << kBlocksShift);  // seq_cst: file comment
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(m_);
      cv_.notify_all();
    }
    t_in_pool = true;
    claim_blocks(gen);
    t_in_pool = false;
    for (int spins = 0; done_.load(std::memory_order_acquire) < blocks; ++spins) {
      if (spins < 4096) {
        TAPEGRAD_PAUSE();
      } else {
        std::this_thread::yield();
      }
    }
    return true;
  }

 private:
  // Claims and runs blocks of job `gen` until none is left or the generation has moved on.
  void claim_blocks(std::uint64_t gen) {
    std::uint64_t t = ticket_.load(std::memory_order_acquire);
    for (;;) {
      const std::size_t blocks = (t >> kBlocksShift) & kIndexMask, i = t & kIndexMask;
      if ((t >> kGenShift) != gen || i >= blocks) return;
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        continue;
      }
      fn_(ctx_, bound(i, blocks), bound(i + 1, blocks));  // the job is current: its fields are stable
      done_.fetch_add(1, std::memory_order_release);
      t = ticket_.load(std::memory_order_acquire);
    }
  }
  std::size_t bound(std::size_t i, std::size_t blocks) const {
    if (i >= blocks) return n_;
    return n_ * i / blocks / align_ * align_;
  }

  void work() {
    t_in_pool = true;
    std::uint64_t seen = ticket_.load() >> kGenShift;
    for (;;) {
      const auto idle_since = std::chrono::steady_clock::now();
      std::uint64_t gen = seen;
      for (int spins = 1; gen == seen && !stop_.load(std::memory_order_relaxed); ++spins) {
        TAPEGRAD_PAUSE();
        if (spins % 256 == 0 &&
            std::chrono::steady_clock::now() - idle_since > std::chrono::microseconds(50)) {
          std::unique_lock<std::mutex> lk(m_);
          sleepers_.fetch_add(1);
          cv_.wait(lk, [&] { return stop_.load() || (ticket_.load() >> kGenShift) != seen; });
          sleepers_.fetch_sub(1);
        }
        gen = ticket_.load(std::memory_order_acquire) >> kGenShift;
      }
      if (stop_.load()) return;
      seen = gen;
      claim_blocks(gen);
    }
  }

  std::mutex run_mutex_;  // one job at a time; resize waits for it
  std::mutex m_;          // the sleep/notify handshake and stop
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
  std::atomic<int> threads_{1};
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<std::size_t> done_{0};
  std::atomic<int> sleepers_{0};
  std::size_t n_ = 0, align_ = 1;
  ChunkFn fn_ = nullptr;
  void* ctx_ = nullptr;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

std::size_t parallel_blocks(std::size_t n, std::size_t min_block) noexcept {
  const int threads = pool().threads();
  if (threads <= 1 || t_in_pool || min_block == 0) return 1;
  const std::size_t fit = n / min_block;
  return fit < 2 ? 1 : std::min<std::size_t>(fit, static_cast<std::size_t>(threads));
}

void run_blocks(std::size_t n, std::size_t blocks, std::size_t align, ChunkFn fn, void* ctx) {
  if (align == 0) align = 1;
  if (!pool().run(n, blocks, align, fn, ctx)) fn(ctx, 0, n);
}

}  // namespace detail

void set_num_threads(int n) {
  if (n < 1 || n > 256) {
    throw ValueError("set_num_threads: need 1 to 256 threads; got " + std::to_string(n));
  }
  if (n != detail::pool().threads()) detail::pool().resize(n);
  set_blas_threads(1);
}

int num_threads() noexcept { return detail::pool().threads(); }

}  // namespace tapegrad
