#pragma once
// The allocation counter of the "allocates nothing after warm-up" tests: tgtest::allocations()
// counts every heap allocation of the program. Include it in exactly one source file of a test
// program (each tests/test_*.cpp is a program of its own): outside the sanitizer builds it
// replaces the global operator new, which a program may define once only.
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace tgtest {
namespace alloc_counter_detail {
inline std::atomic<long> g_news{0};
}  // namespace alloc_counter_detail

// The number of heap allocations made so far.
inline long allocations() { return alloc_counter_detail::g_news.load(); }

// Heap allocations made by `steps` calls of f after `warmup` calls.
template <class F>
long allocations_after_warmup(F&& f, int warmup = 3, int steps = 10) {
  for (int i = 0; i < warmup; ++i) f();
  const long before = allocations();
  for (int i = 0; i < steps; ++i) f();
  return allocations() - before;
}
}  // namespace tgtest

// GCC says __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__; clang 14 says __has_feature(...).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TGTEST_SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TGTEST_SANITIZER_ALLOCATOR 1
#endif
#endif

#if defined(TGTEST_SANITIZER_ALLOCATOR)
// Under AddressSanitizer or ThreadSanitizer (the CI builds) their allocator reports every
// allocation, new and malloc alike, to a hook; replacing operator new there would fight their
// own replacement (clang's static TSan runtime even defines it: a duplicate symbol).
// (declared here as in <sanitizer/allocator_interface.h>, which GCC does not install)
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {  // (internal to the one file that includes this header; installed at its start-up)
void count_allocation(const volatile void*, std::size_t) {
  tgtest::alloc_counter_detail::g_news.fetch_add(1, std::memory_order_relaxed);
}
void ignore_free(const volatile void*) {}
const int g_hooks_installed = __sanitizer_install_malloc_and_free_hooks(count_allocation, ignore_free);
}  // namespace
#else
// Every form a program uses is replaced, so that each new/delete pair goes through malloc/free.
void* operator new(std::size_t n) {
  tgtest::alloc_counter_detail::g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif
