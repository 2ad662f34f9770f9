// The process group of a data-parallel run: the few collectives training needs,
// behind one small interface so that everything above it is the same with and
// without MPI. Under `mpirun -np N` it is MPI's world (train/mpi/, built when
// CMake's TOY_MPI is on); otherwise, or in a build without MPI, a single rank on
// which every collective is the identity.
//
// Reductions sum in rank order (((x₀ + x₁) + x₂) + …), whatever the MPI library's
// own algorithm would do, so N ranks give the same bits on every run and the same
// bits as one process whose N thread replicas sum their gradients in thread order
// (train/trainer.h). Each reduction is a reduce-scatter (every rank receives the
// others' pieces of its own chunk and sums them in order: MPI_Alltoallv) followed,
// for a full all-reduce, by an all-gather (MPI_Allgatherv): the same 2·(N−1)/N·n
// floats per rank as a ring all-reduce.
//
// Errors: a failed MPI call throws toy::Error; a peer that dies makes mpirun end the
// job (see README "Data-parallel training with MPI").
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace toy::train {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks on this machine (they share its cores).
  virtual int local_size() const = 0;

  // `bounds` (size()+1 offsets, non-decreasing, bounds[0] = 0, bounds.back() = n) splits a
  // buffer of n elements into one chunk per rank. After reduce_scatter_sum, chunk rank() of
  // `data` holds the rank-order sum of every rank's chunk; the rest of `data` is unchanged.
  virtual void reduce_scatter_sum(float* data, const std::vector<int64_t>& bounds) = 0;
  virtual void reduce_scatter_sum(double* data, const std::vector<int64_t>& bounds) = 0;
  // Chunk r of every rank r copied into the same place on every rank.
  virtual void all_gather(float* data, const std::vector<int64_t>& bounds) = 0;
  virtual void all_gather(double* data, const std::vector<int64_t>& bounds) = 0;
  // Rank 0 receives chunk r (bounds[r+1] − bounds[r] elements) at recv + bounds[r] from rank
  // r's `send`; `recv` is unused on the other ranks. Rank 0 gathers what no rank holds whole
  // (ZeRO-1's moments, into a checkpoint) without any other rank holding it either.
  virtual void gather_to_root(const float* send, float* recv,
                              const std::vector<int64_t>& bounds) = 0;

  // Whether the collectives may be called from a thread other than the one that connected,
  // one call at a time (MPI_THREAD_SERIALIZED): the gradient reduction's communication
  // thread (train/backward_reduction.h) needs it.
  virtual bool any_thread() const = 0;

  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (a rank that cannot go on must not leave the
  // others waiting in a collective).
  [[noreturn]] virtual void abort(int code) = 0;

  // Rank-order sums of n values on every rank (reduce_scatter_sum + all_gather).
  template <typename Real>
  void all_reduce_sum(Real* data, int64_t n) {
    if (size() == 1) return;
    const std::vector<int64_t> bounds = even_bounds(n);
    reduce_scatter_sum(data, bounds);
    all_gather(data, bounds);
  }
  // n elements split into size() near-equal chunks.
  std::vector<int64_t> even_bounds(int64_t n) const;
};

// One process: rank 0 of 1.
std::unique_ptr<Communicator> single_process();

// The process group of this process: MPI's world when it was started by mpirun (an
// Open MPI / PMIx launcher environment), else single_process(). Throws toy::Error when
// started by mpirun with more than one rank in a build without MPI (N copies would each
// train the whole run and write the same files). Call once, before any other thread
// exists; the group ends (MPI_Finalize) when the returned object is destroyed.
std::unique_ptr<Communicator> connect_process_group(int* argc, char*** argv);

// Whether this binary was built with MPI.
bool built_with_mpi();

}  // namespace toy::train
