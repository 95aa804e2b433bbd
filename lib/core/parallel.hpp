#pragma once
// Internal to lib/: parallel_for over the pool of set_num_threads (core/threads.hpp).
#include <cstddef>
#include <type_traits>

namespace tapegrad::detail {

using ChunkFn = void (*)(void* ctx, std::size_t begin, std::size_t end);

// Rows of C per block when a product C (M x N) = op(A) op(B) with K inner terms is split over
// threads: 2^17 multiply-adds or more (about three microseconds at 80 GFLOP/s, against well
// under one for handing a block to a spinning pool thread), a multiple of kGemmRowAlign (the
// packed kernels' tiles are 8 or 4 rows). gemm splits large products this way, and linear its
// forward with the bias rows.
constexpr std::size_t kGemmRowAlign = 16;
std::size_t gemm_min_rows(std::size_t N, std::size_t K) noexcept;

// How many blocks parallel_for(n, min_block, ...) would use now: 1 with one thread, inside a
// pool thread, or when n < 2 min_block.
std::size_t parallel_blocks(std::size_t n, std::size_t min_block) noexcept;
// Runs fn(ctx, begin, end) over [0, n) in `blocks` contiguous blocks, on the pool and the
// calling thread; returns when all are done. Block i is [bound(i), bound(i + 1)) with
// bound(i) = (n i / blocks) rounded down to a multiple of align (bound(blocks) = n). Runs
// everything on the calling thread when the pool is busy (another thread's op).
void run_blocks(std::size_t n, std::size_t blocks, std::size_t align, ChunkFn fn, void* ctx);

// f(begin, end) over [0, n), split as above when there is enough work for more than one
// block of at least min_block items; block boundaries are multiples of align.
template <class F>
void parallel_for(std::size_t n, std::size_t min_block, std::size_t align, F&& f) {
  const std::size_t blocks = parallel_blocks(n, min_block);
  if (blocks <= 1) {
    if (n > 0) f(std::size_t(0), n);
    return;
  }
  using Fn = std::remove_reference_t<F>;
  run_blocks(
      n, blocks, align, [](void* ctx, std::size_t b, std::size_t e) { (*static_cast<Fn*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace tapegrad::detail
