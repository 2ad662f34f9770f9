#include "train/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace toy::train {

#ifdef TOY_MPI
// train/mpi/mpi_communicator.cpp
std::unique_ptr<Communicator> connect_mpi(int* argc, char*** argv);
#endif

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  void reduce_scatter_sum(float*, const std::vector<int64_t>&) override {}
  void reduce_scatter_sum(double*, const std::vector<int64_t>&) override {}
  void all_gather(float*, const std::vector<int64_t>&) override {}
  void all_gather(double*, const std::vector<int64_t>&) override {}
  void gather_to_root(const float* send, float* recv, const std::vector<int64_t>& b) override {
    std::copy(send, send + (b[1] - b[0]), recv + b[0]);
  }
  bool any_thread() const override { return true; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

// The world size an MPI launcher announces in the environment (Open MPI's mpirun, and
// the PMI variables of MPICH's hydra and Slurm's srun); 0 when none did.
int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"}) {
    const char* value = std::getenv(name);
    if (value && *value) return std::atoi(value);
  }
  // PMIx sets the rank but not always the size.
  return std::getenv("PMIX_RANK") ? 1 : 0;
}

}  // namespace

std::vector<int64_t> Communicator::even_bounds(int64_t n) const {
  const int64_t N = size();
  std::vector<int64_t> bounds(static_cast<size_t>(N + 1));
  for (int64_t r = 0; r <= N; ++r) bounds[static_cast<size_t>(r)] = n * r / N;
  return bounds;
}

std::unique_ptr<Communicator> single_process() {
  return std::make_unique<SingleProcess>();
}

bool built_with_mpi() {
#ifdef TOY_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> connect_process_group(int* argc, char*** argv) {
  const int launched = launcher_world_size();
  if (launched == 0) return single_process();
#ifdef TOY_MPI
  return connect_mpi(argc, argv);
#else
  if (launched > 1)
    fail("started by an MPI launcher with ", launched,
         " processes, but this toy was built without MPI (CMake -DTOY_MPI=ON needs "
         "libopenmpi-dev); every process would train the whole run alone");
  return single_process();
#endif
}

}  // namespace toy::train
