// toy train / toy finetune under `mpirun -np 2` (issues 14, 15): the per-step losses match
// one process with the same global batch to 1e-5 relative over 50 steps (and bit for bit
// one process whose thread replicas split the batch the same way), the sharded
// optimizer (ZeRO-1) gives the same run and the same checkpoint, a checkpoint resumes with
// another number of ranks, the reduction overlapped with the backward gives the bits of
// the one after it, rank 0 alone writes files, a bad --batch is refused, and a rank that
// dies ends the job within seconds. Skipped when mpirun is not installed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "support/fixtures.h"

namespace {

namespace fs = std::filesystem;
using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::read_text;
using toy::testing::run_command;
using toy::testing::temp_path;

bool have_mpirun() {
  std::string out;
  return run_command("command -v mpirun", &out) == 0;
}

std::string toy_path() {
  return "'" + binary_dir() + "/toy'";
}

// Open MPI refuses root without these; they change nothing for other users.
const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
    "timeout 300 mpirun --oversubscribe --bind-to none -np ";

using toy::testing::run_toy;
int mpi_toy(int ranks, const std::string& args, std::string* output) {
  return run_command(kMpirun + std::to_string(ranks) + " " + toy_path() + " " + args, output);
}

// A fresh directory for one run's files (to see that no rank leaves stray files).
struct Dir {
  fs::path path = temp_path("-mpi");
  Dir() { fs::create_directories(path); }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

// The `key` ("loss", "grad_norm") of every step line of a --metrics file.
std::vector<double> values(const std::string& metrics, const char* key) {
  std::vector<double> out;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains(key) && !j.contains("final")) out.push_back(j[key].get<double>());
  }
  return out;
}
std::vector<double> losses(const std::string& metrics) {
  return values(metrics, "loss");
}

// Every tensor of two GGUF files (a checkpoint's parameters and moments), bit for bit.
void expect_same_tensors(const std::string& a, const std::string& b) {
  const auto fa = toy::gguf::File::open(a), fb = toy::gguf::File::open(b);
  ASSERT_EQ(fa->tensors().size(), fb->tensors().size());
  for (const toy::gguf::TensorInfo& t : fa->tensors()) {
    const toy::gguf::TensorInfo* u = fb->find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(t.bytes, u->bytes) << t.name;
    EXPECT_EQ(std::memcmp(fa->tensor(t).data, fb->tensor(*u).data, t.bytes), 0) << t.name;
  }
}

void expect_close(const std::vector<double>& a, const std::vector<double>& b, size_t steps) {
  ASSERT_EQ(a.size(), steps);
  ASSERT_EQ(b.size(), steps);
  for (size_t i = 0; i < steps; ++i)
    EXPECT_LE(std::abs(a[i] - b[i]), 1e-5 * std::abs(b[i]))
        << "step " << i + 1 << ": " << a[i] << " vs " << b[i];
}

std::string corpus() {
  static const std::string path = [] {
    const std::string p = temp_path(".txt");
    std::ofstream(p) << read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 60000);
    return p;
  }();
  return path;
}

const std::string kTrain =
    "train --n-embd 32 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 64 --ctx 32"
    " --lr 3e-3 --warmup 5 -q -t 1 --data ";

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_mpirun()) GTEST_SKIP() << "mpirun is not installed (apt-get install openmpi-bin)";
  }
};

TEST_F(DataParallel, TrainLossesMatchOneProcessAndOnlyRankZeroWrites) {
  Dir one, two;
  std::string out;
  const std::string args =
      kTrain + corpus() + " --batch 8 --steps 50 --eval-every 25 --save-every 25";
  ASSERT_EQ(run_toy(args + " -o " + (one / "m.gguf") + " --metrics " + (one / "m.jsonl"), &out), 0)
      << out;
  ASSERT_EQ(mpi_toy(2, args + " -o " + (two / "m.gguf") + " --metrics " + (two / "m.jsonl"), &out),
            0)
      << out;
  expect_close(losses(two / "m.jsonl"), losses(one / "m.jsonl"), 50);
  // The same files, written once: no rank-1 copies or temporaries.
  EXPECT_EQ(two.names(), one.names());
  EXPECT_EQ(two.names(), (std::vector<std::string>{"m.gguf", "m.gguf.checkpoint", "m.jsonl"}));
}

// The rank-order sum of 2 ranks x 1 thread is the thread-order sum of 1 process x 2 thread
// replicas over the same rows: the same model, bit for bit.
TEST_F(DataParallel, TwoRanksWriteTheModelOfTwoThreadReplicas) {
  Dir one, two;
  std::string out;
  const std::string args =
      "train --n-embd 32 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 64 --ctx 32 --lr 3e-3"
      " --batch 8 --steps 20 -q --data " +
      corpus();
  ASSERT_EQ(run_toy(args + " -t 2 -o " + (one / "m.gguf"), &out), 0) << out;
  ASSERT_EQ(mpi_toy(2, args + " -t 1 -o " + (two / "m.gguf"), &out), 0) << out;
  EXPECT_TRUE(read_text(one / "m.gguf") == read_text(two / "m.gguf"));
}

TEST_F(DataParallel, FinetuneLoraLossesMatchOneProcess) {
  Dir one, two;
  std::string out;
  const std::string args = "finetune -m " + fixture_path("models/stories260K.gguf") + " --data " +
                           corpus() +
                           " --lora-targets all-linear -r 4 --steps 50 --lr 2e-3 -c 64 --batch 4"
                           " -q -t 1";
  ASSERT_EQ(run_toy(args + " -o " + (one / "a.gguf") + " --metrics " + (one / "a.jsonl"), &out), 0)
      << out;
  ASSERT_EQ(mpi_toy(2, args + " -o " + (two / "a.gguf") + " --metrics " + (two / "a.jsonl"), &out),
            0)
      << out;
  expect_close(losses(two / "a.jsonl"), losses(one / "a.jsonl"), 50);
}

TEST_F(DataParallel, ShardedOptimizerGivesTheSameRunAndResumesWithAnotherRankCount) {
  Dir ref, run;
  std::string out;
  // A constant schedule, so that a run of 20 steps continues into one of 40.
  const std::string args = kTrain + corpus() + " --batch 8 --lr-schedule constant --save-every 10";
  ASSERT_EQ(run_toy(args + " --steps 40 -o " + (ref / "m.gguf") + " --metrics " + (ref / "m.jsonl"),
                    &out),
            0)
      << out;
  const std::string ckpt = run / "ckpt", common = args + " --checkpoint-dir " + ckpt + " -o " +
                                                  (run / "m.gguf") + " --metrics " +
                                                  (run / "m.jsonl");
  // 2 ranks with ZeRO-1 to step 20, then 1 process to 30, then 2 ranks without sharding to 40.
  ASSERT_EQ(mpi_toy(2, common + " --shard-optimizer --steps 20", &out), 0) << out;
  ASSERT_EQ(run_toy(common + " --steps 30 --resume " + ckpt, &out), 0) << out;
  ASSERT_EQ(mpi_toy(2, common + " --steps 40 --resume " + ckpt, &out), 0) << out;
  expect_close(losses(run / "m.jsonl"), losses(ref / "m.jsonl"), 40);
}

TEST_F(DataParallel, ShardedAndReplicatedOptimizersWriteTheSameModel) {
  Dir a, b;
  std::string out;
  const std::string args = kTrain + corpus() + " --batch 8 --steps 20";
  ASSERT_EQ(mpi_toy(2, args + " -o " + (a / "m.gguf"), &out), 0) << out;
  ASSERT_EQ(mpi_toy(2, args + " --shard-optimizer -o " + (b / "m.gguf"), &out), 0) << out;
  EXPECT_EQ(read_text(a / "m.gguf"), read_text(b / "m.gguf"));
}

// ZeRO-1's ranks hold their shard's moments only; rank 0 gathers them tensor by tensor as it
// writes the checkpoint, which holds the same parameters and moments as the unsharded run's
// and one process's (whose 2 thread replicas split the batch as the 2 ranks do).
TEST_F(DataParallel, ShardedMomentsCheckpointIsTheUnshardedOne) {
  Dir one, two, sharded;
  std::string out;
  const std::string args =
      "train --n-embd 32 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 64 --ctx 32 --lr 3e-3"
      " --batch 8 --steps 6 --save-every 3 -q --data " +
      corpus();
  ASSERT_EQ(run_toy(args + " -t 2 -o " + (one / "m.gguf"), &out), 0) << out;
  ASSERT_EQ(mpi_toy(2, args + " -t 1 -o " + (two / "m.gguf"), &out), 0) << out;
  ASSERT_EQ(mpi_toy(2, args + " -t 1 --shard-optimizer -o " + (sharded / "m.gguf"), &out), 0)
      << out;
  expect_same_tensors(sharded / "m.gguf.checkpoint/state.gguf",
                      two / "m.gguf.checkpoint/state.gguf");
  expect_same_tensors(sharded / "m.gguf.checkpoint/state.gguf",
                      one / "m.gguf.checkpoint/state.gguf");
}

// The gradients summed layer by layer while the backward runs (the default) or after it
// (--no-overlap): the same losses, gradient norms and model bytes, with 2 thread replicas per
// rank, gradient accumulation, telemetry steps (on which a sharded run sums every tensor)
// and ZeRO-1. Layers this wide are a bucket each (BackwardReduction::kMinBucket), so the
// reduction does run beside the backward.
TEST_F(DataParallel, OverlappedReductionGivesTheBitsOfTheReductionAfterTheBackward) {
  const std::string args =
      "train --n-embd 128 --n-layer 3 --n-head 4 --n-head-kv 2 --n-ff 640 --ctx 16 --lr 3e-3"
      " --batch 8 --accum 2 --steps 6 -t 2 --metrics-every 3 --data " +
      corpus();
  for (const std::string shard : {"", " --shard-optimizer"}) {
    Dir after, during;
    std::string out;
    ASSERT_EQ(mpi_toy(2,
                      args + shard + " -q --no-overlap -o " + (after / "m.gguf") + " --metrics " +
                          (after / "m.jsonl"),
                      &out),
              0)
        << out;
    ASSERT_EQ(
        mpi_toy(2,
                args + shard + " -o " + (during / "m.gguf") + " --metrics " + (during / "m.jsonl"),
                &out),
        0)
        << out;
    EXPECT_NE(out.find("gradients summed during the backward"), std::string::npos) << out;
    EXPECT_EQ(losses(during / "m.jsonl"), losses(after / "m.jsonl")) << shard;
    EXPECT_EQ(values(during / "m.jsonl", "grad_norm"), values(after / "m.jsonl", "grad_norm"));
    EXPECT_TRUE(read_text(during / "m.gguf") == read_text(after / "m.gguf")) << shard;
  }
}

TEST_F(DataParallel, BatchNotAMultipleOfTheRanksIsRefused) {
  Dir dir;
  std::string out;
  const std::string args = kTrain + corpus() + " --steps 2 --batch 7 -o " + (dir / "m.gguf");
  EXPECT_NE(mpi_toy(2, args, &out), 0) << out;
  EXPECT_NE(out.find("--batch 7 is the global batch and must be a multiple of the 2 MPI ranks"),
            std::string::npos)
      << out;
  EXPECT_TRUE(dir.names().empty());
}

TEST_F(DataParallel, ADeadRankEndsTheJobAndTheCheckpointStays) {
  Dir dir;
  const std::string ckpt = dir / "ckpt";
  const std::string run = kMpirun + "2 " + toy_path() + " " + kTrain + corpus() +
                          " --steps 100000 --save-every 20 --checkpoint-dir " + ckpt + " -o " +
                          (dir / "m.gguf");
  // Once a checkpoint exists, SIGKILL rank 1 (found by its Open MPI rank variable) and time
  // how long the rest of the job takes to end.
  const std::string script = run + " > " + (dir / "log") + " 2>&1 & job=$!\n" +
                             "for i in $(seq 300); do [ -f " + ckpt +
                             "/state.gguf ] && break; sleep 0.1; done\n"
                             "for p in $(pgrep -f 'toy train .*" +
                             ckpt +
                             "'); do\n"
                             "  tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | "
                             "grep -qx OMPI_COMM_WORLD_RANK=1 && kill -9 $p\n"
                             "done\n"
                             "start=$(date +%s%N); wait $job; rc=$?\n"
                             "echo \"rc=$rc ms=$(( ($(date +%s%N) - start) / 1000000 ))\"\n";
  std::ofstream(dir / "kill.sh") << script;
  std::string out;
  ASSERT_EQ(run_command("bash " + (dir / "kill.sh"), &out), 0) << out;
  const auto rc = out.find("rc="), ms = out.find("ms=");
  ASSERT_NE(rc, std::string::npos) << out;
  EXPECT_NE(std::atoi(out.c_str() + rc + 3), 0) << out << read_text(dir / "log");
  EXPECT_LT(std::atoi(out.c_str() + ms + 3), 10000) << out;
  // The last checkpoint is whole (the reader validates every offset and size).
  std::string info;
  EXPECT_EQ(run_toy("info " + ckpt + "/state.gguf", &info), 0) << info;
}

}  // namespace
