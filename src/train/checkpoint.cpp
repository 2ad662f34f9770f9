#include "train/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace toy::train {
namespace {

constexpr std::string_view kPrefix = "toy.checkpoint.";
constexpr std::string_view kRunPrefix = "toy.checkpoint.run.";

std::string key(std::string_view name) {
  return std::string(kPrefix) + std::string(name);
}

std::vector<int64_t> shape_of(const ParamTensor& p) {
  return {p.spec.ne.begin(), p.spec.ne.begin() + p.spec.n_dims};
}

}  // namespace

std::string checkpoint_file(const std::string& dir) {
  return (std::filesystem::path(dir) / "state.gguf").string();
}

void save_checkpoint(const std::string& dir, const ParamStore<float>& store,
                     const TrainerState& state, const RunDescription& run,
                     const MomentSource& moments) {
  TOY_CHECK(moments || (store.has_moments() && store.moments_begin() == 0 &&
                        store.moments_end() == store.total()),
            "a checkpoint of a store without all of its moments");
  using gguf::Value;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("checkpoint directory ", dir, ": ", ec.message());
  gguf::Writer writer;
  writer.set("general.type", Value::string("toy-checkpoint"));
  writer.set(key("version"), Value::u32(1));
  writer.set(key("step"), Value::i64(state.step));
  writer.set(key("rng"), Value::string(state.rng));
  writer.set(key("eval_rng"), Value::string(state.eval_rng));
  writer.set(key("train_seconds"), Value::f64(state.train_seconds));
  writer.set(key("wall_seconds"), Value::f64(state.wall_seconds));
  writer.set(key("loss_scale"), Value::f64(state.loss_scale));
  writer.set(key("loss_scale_clean_steps"), Value::i64(state.clean_steps));
  writer.set(key("skipped_steps"), Value::i64(state.skipped));
  for (const auto& [name, value] : run)
    writer.set(std::string(kRunPrefix) + name, Value::string(value));
  for (const ParamTensor& p : store.tensors()) {
    writer.add_tensor(p.spec.name, DType::F32, shape_of(p),
                      static_cast<const void*>(store.params() + p.offset));
    for (int moment : {1, 2}) {
      const std::string name = p.spec.name + (moment == 1 ? ".adam_m" : ".adam_v");
      if (moments) {
        // Gathered while the file is written, one tensor at a time (gguf::Writer calls the
        // fills in the order the tensors were added).
        writer.add_tensor(name, DType::F32, shape_of(p), [&moments, &p, moment](uint8_t* dst) {
          moments(moment, p.offset, p.offset + p.numel, reinterpret_cast<float*>(dst));
        });
      } else {
        const float* m = moment == 1 ? store.moment1() : store.moment2();
        writer.add_tensor(name, DType::F32, shape_of(p), static_cast<const void*>(m + p.offset));
      }
    }
  }
  writer.write(checkpoint_file(dir));
}

void send_checkpoint_moments(const ParamStore<float>& store, const MomentSource& moments) {
  for (const ParamTensor& p : store.tensors())
    for (int moment : {1, 2}) moments(moment, p.offset, p.offset + p.numel, nullptr);
}

TrainerState load_checkpoint(const std::string& dir, ParamStore<float>& store,
                             const RunDescription& run) {
  const std::string path = checkpoint_file(dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    fail("--resume ", dir, ": not a checkpoint directory (written by --save-every)");
  if (!std::filesystem::exists(path, ec))
    fail("--resume ", dir, ": no checkpoint in it (", path, " is missing)");
  const auto file = gguf::File::open(path);
  if (file->get_string_or("general.type", "") != "toy-checkpoint")
    fail(path, ": not a toy checkpoint (general.type is not toy-checkpoint)");
  for (const auto& [name, value] : run) {
    const std::string found = file->get_string_or(std::string(kRunPrefix) + name, "(unset)");
    if (found != value)
      fail(path, ": the checkpoint was written with ", name, " = ", found, ", this run has ", value,
           "; resume with the same settings");
  }
  // Elements [first, last) of the tensor's layout range, at dst.
  auto read = [&](const std::string& name, const ParamTensor& p, int64_t first, int64_t last,
                  float* dst) {
    const gguf::TensorInfo* info = file->find_tensor(name);
    if (!info) fail(path, ": tensor ", name, " is missing (a checkpoint of another model?)");
    if (info->type != DType::F32 || info->n_dims != p.spec.n_dims ||
        !std::equal(p.spec.ne.begin(), p.spec.ne.begin() + p.spec.n_dims, info->ne.begin()))
      fail(path, ": tensor ", name, " is not F32 ", p.spec.shape_string());
    if (last <= first) return;
    const float* data = static_cast<const float*>(file->tensor(*info).data);
    std::memcpy(dst, data + (first - p.offset), static_cast<size_t>(last - first) * sizeof(float));
  };
  if (!store.has_moments()) store.use_moments(0, store.total());
  const int64_t lo = store.moments_begin(), hi = store.moments_end();
  for (const ParamTensor& p : store.tensors()) {
    const int64_t end = p.offset + p.numel;
    read(p.spec.name, p, p.offset, end, store.params() + p.offset);
    // The part of the tensor within the store's moments (a ZeRO-1 rank's shard).
    const int64_t first = std::clamp(p.offset, lo, hi), last = std::clamp(end, lo, hi);
    read(p.spec.name + ".adam_m", p, first, last, store.moment1() + (first - lo));
    read(p.spec.name + ".adam_v", p, first, last, store.moment2() + (first - lo));
  }
  const size_t expected = 3 * store.tensors().size();
  if (file->tensors().size() != expected)
    fail(path, ": ", file->tensors().size(), " tensors, this run trains ", expected / 3,
         " (x3 with the moments): a checkpoint of another run");
  TrainerState state;
  state.step = file->get_integer(key("step"));
  state.rng = std::string(file->get_string(key("rng")));
  state.eval_rng = std::string(file->get_string(key("eval_rng")));
  state.train_seconds = file->get_number_or(key("train_seconds"), 0.0);
  state.wall_seconds = file->get_number_or(key("wall_seconds"), 0.0);
  state.loss_scale = file->get_number_or(key("loss_scale"), 1.0);
  state.clean_steps = file->get_integer_or(key("loss_scale_clean_steps"), 0);
  state.skipped = file->get_integer_or(key("skipped_steps"), 0);
  if (!(state.loss_scale > 0.0) || state.clean_steps < 0 || state.skipped < 0 ||
      state.skipped > state.step)
    fail(path, ": the loss-scaling state is invalid (scale ", state.loss_scale, ", ",
         state.clean_steps, " clean and ", state.skipped, " skipped steps)");
  if (state.step < 0) fail(path, ": negative step ", state.step);
  return state;
}

}  // namespace toy::train
