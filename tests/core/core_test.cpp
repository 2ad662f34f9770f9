#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <numeric>
#include <thread>
#include <vector>

#include "core/arena.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "support/fixtures.h"

namespace toy {
namespace {

TEST(DType, TableMatchesGgmlBlockSizes) {
  EXPECT_EQ(row_bytes(DType::F32, 10), 40);
  EXPECT_EQ(row_bytes(DType::Q8_0, 64), 68);
  EXPECT_EQ(row_bytes(DType::Q4_K, 512), 288);
  EXPECT_EQ(row_bytes(DType::Q6_K, 256), 210);
  EXPECT_FALSE(dtype_info(4).has_value());  // retired Q4_2
  EXPECT_FALSE(dtype_info(1000).has_value());
  EXPECT_EQ(dtype_from_name("Q4_K"), DType::Q4_K);
  EXPECT_EQ(dtype_from_name("bf16"), DType::BF16);
  EXPECT_FALSE(dtype_from_name("q9_9").has_value());
  EXPECT_THROW(row_bytes(DType::Q8_0, 33), Error);
}

TEST(Tensor, ZerosIsContiguousAndAligned) {
  Tensor t = Tensor::zeros(DType::F32, {7, 3, 2});
  EXPECT_EQ(t.numel(), 42);
  EXPECT_EQ(t.rows(), 6);
  EXPECT_TRUE(t.contiguous());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u);
  EXPECT_EQ(t.shape_string(), "[7, 3, 2]");
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.ptr<float>()[i], 0.0f);
}

TEST(Arena, HandsOutAlignedSlicesAndRejectsOverflow) {
  Arena arena(256);
  void* a = arena.take(10);
  void* b = arena.take(10);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  EXPECT_EQ(static_cast<uint8_t*>(b) - static_cast<uint8_t*>(a), 64);
  EXPECT_THROW(arena.take(1000), Error);
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 3, 17, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[i]++;
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
    }
  }
}

// Two threads sharing one pool (toy serve's scheduler beside another caller): every
// region still runs once on every pool thread, and neither caller waits forever.
TEST(ThreadPool, CallsFromSeveralThreadsTakeTurns) {
  ThreadPool pool(2);
  constexpr int kRegions = 2000;
  auto caller = [&pool](std::atomic<int64_t>& total) {
    for (int r = 0; r < kRegions; ++r) {
      std::atomic<int> ran{0};
      pool.run([&](int, int) { ran++; });
      total += ran.load();
    }
  };
  std::atomic<int64_t> a{0}, b{0};
  std::thread other(caller, std::ref(b));
  caller(a);
  other.join();
  EXPECT_EQ(a.load(), 2 * kRegions);
  EXPECT_EQ(b.load(), 2 * kRegions);
}

TEST(ThreadPool, RethrowsTaskErrors) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run([](int t, int) {
    if (t == 1) fail("boom");
  }),
               Error);
  // The pool stays usable afterwards.
  std::atomic<int> count{0};
  pool.run([&](int, int) { count++; });
  EXPECT_EQ(count.load(), 2);
}

TEST(Error, CheckCarriesMessage) {
  try {
    TOY_CHECK(1 + 1 == 3, "arithmetic ", 42);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("arithmetic 42"), std::string::npos);
  }
}

TEST(Support, Sha256KnownVectors) {
  EXPECT_EQ(testing::sha256_hex("", 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(testing::sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string million(1000000, 'a');
  EXPECT_EQ(testing::sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace toy
