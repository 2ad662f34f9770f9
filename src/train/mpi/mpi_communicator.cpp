// The Communicator over MPI's world (train/communicator.h). One thread at a time calls
// MPI (MPI_THREAD_SERIALIZED): the main thread between the thread pool's parallel regions,
// and the gradient reduction's communication thread while the backward runs
// (train/backward_reduction.h), never both at once. A library that only gives
// MPI_THREAD_FUNNELED gets every call from the main thread (any_thread() is false, and the
// gradients are reduced after the backward).
//
// The communication thread shares the cores with the backward: it starts its collectives
// non-blocking and sleeps between tests while a peer has not arrived, where a blocking call
// would spin in MPI's progress loop and take a core from this rank's backward (or, on one
// machine, from the peer it waits for). The main thread has nothing else to run, so its
// collectives block.
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>
#include <type_traits>

#include "core/error.h"
#include "train/communicator.h"

namespace toy::train {
namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  fail("MPI: ", what, " failed: ", std::string(text, static_cast<size_t>(length)),
       " (a rank died or the network failed)");
}

template <typename Real>
MPI_Datatype type_of() {
  return std::is_same_v<Real, double> ? MPI_DOUBLE : MPI_FLOAT;
}

class MpiWorld final : public Communicator {
 public:
  MpiWorld(int* argc, char*** argv) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    any_thread_ = provided >= MPI_THREAD_SERIALIZED;
    // Errors come back as codes (and become toy::Error) instead of MPI's default of
    // aborting without a word about what toy was doing.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    MPI_Comm local;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    check(MPI_Comm_size(local, &local_size_), "MPI_Comm_size");
    MPI_Comm_free(&local);
    main_ = std::this_thread::get_id();
  }
  ~MpiWorld() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }

  void reduce_scatter_sum(float* data, const std::vector<int64_t>& bounds) override {
    reduce_scatter(data, bounds, scratch_f_);
  }
  void reduce_scatter_sum(double* data, const std::vector<int64_t>& bounds) override {
    reduce_scatter(data, bounds, scratch_d_);
  }
  void all_gather(float* data, const std::vector<int64_t>& bounds) override {
    gather(data, bounds);
  }
  void all_gather(double* data, const std::vector<int64_t>& bounds) override {
    gather(data, bounds);
  }

  void gather_to_root(const float* send, float* recv, const std::vector<int64_t>& bounds) override {
    counts(bounds, send_count_, send_displ_);
    check(MPI_Gatherv(send, send_count_[size_t(rank_)], MPI_FLOAT, recv, send_count_.data(),
                      send_displ_.data(), MPI_FLOAT, 0, MPI_COMM_WORLD),
          "MPI_Gatherv");
  }
  bool any_thread() const override { return any_thread_; }

  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  // MPI counts are int: the callers' buckets stay far below.
  void counts(const std::vector<int64_t>& bounds, std::vector<int>& count,
              std::vector<int>& displ) const {
    TOY_CHECK(bounds.size() == size_t(size_) + 1 && bounds.back() < INT_MAX, "bounds");
    count.resize(size_t(size_));
    displ.resize(size_t(size_));
    for (int r = 0; r < size_; ++r) {
      count[size_t(r)] = static_cast<int>(bounds[size_t(r) + 1] - bounds[size_t(r)]);
      displ[size_t(r)] = static_cast<int>(bounds[size_t(r)]);
    }
  }

  // Every rank sends chunk j to rank j; rank r receives the N copies of its chunk and sums
  // them in rank order.
  template <typename Real>
  void reduce_scatter(Real* data, const std::vector<int64_t>& bounds, std::vector<Real>& recv) {
    if (size_ == 1) return;
    counts(bounds, send_count_, send_displ_);
    const int64_t first = bounds[size_t(rank_)];
    const int own = send_count_[size_t(rank_)];
    recv.resize(size_t(own) * size_t(size_));
    recv_count_.assign(size_t(size_), own);
    recv_displ_.resize(size_t(size_));
    for (int r = 0; r < size_; ++r) recv_displ_[size_t(r)] = r * own;
    const char* what = "MPI_Alltoallv (gradient reduce-scatter)";
    if (std::this_thread::get_id() == main_) {
      check(
          MPI_Alltoallv(data, send_count_.data(), send_displ_.data(), type_of<Real>(), recv.data(),
                        recv_count_.data(), recv_displ_.data(), type_of<Real>(), MPI_COMM_WORLD),
          what);
    } else {
      MPI_Request request;
      check(MPI_Ialltoallv(data, send_count_.data(), send_displ_.data(), type_of<Real>(),
                           recv.data(), recv_count_.data(), recv_displ_.data(), type_of<Real>(),
                           MPI_COMM_WORLD, &request),
            what);
      wait_sleeping(request, what);
    }
    Real* out = data + first;
    for (int i = 0; i < own; ++i) out[i] = recv[size_t(i)];
    for (int r = 1; r < size_; ++r) {
      const Real* in = recv.data() + size_t(r) * size_t(own);
      for (int i = 0; i < own; ++i) out[i] += in[i];
    }
  }

  template <typename Real>
  void gather(Real* data, const std::vector<int64_t>& bounds) {
    if (size_ == 1) return;
    counts(bounds, send_count_, send_displ_);
    if (std::this_thread::get_id() == main_) {
      check(MPI_Allgatherv(MPI_IN_PLACE, 0, type_of<Real>(), data, send_count_.data(),
                           send_displ_.data(), type_of<Real>(), MPI_COMM_WORLD),
            "MPI_Allgatherv");
    } else {
      MPI_Request request;
      check(MPI_Iallgatherv(MPI_IN_PLACE, 0, type_of<Real>(), data, send_count_.data(),
                            send_displ_.data(), type_of<Real>(), MPI_COMM_WORLD, &request),
            "MPI_Iallgatherv");
      wait_sleeping(request, "MPI_Iallgatherv");
    }
  }

  // Tests `request` until it completes: a few times at once (a transfer under way moves on
  // in each test), then with a short sleep between tests.
  static void wait_sleeping(MPI_Request& request, const char* what) {
    for (int tests = 0;; ++tests) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      if (tests >= kImmediateTests)
        std::this_thread::sleep_for(std::chrono::microseconds(kSleepUs));
    }
  }
  static constexpr int kImmediateTests = 16;
  static constexpr int kSleepUs = 50;

  int rank_ = 0, size_ = 1, local_size_ = 1;
  bool any_thread_ = false;
  std::thread::id main_;  // the thread that connected
  std::vector<int> send_count_, send_displ_, recv_count_, recv_displ_;
  std::vector<float> scratch_f_;
  std::vector<double> scratch_d_;
};

}  // namespace

std::unique_ptr<Communicator> connect_mpi(int* argc, char*** argv) {
  return std::make_unique<MpiWorld>(argc, argv);
}

}  // namespace toy::train
