#include "train/checkpoint.h"

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
                     const TrainerState& state, const RunDescription& run) {
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
    writer.add_tensor(p.spec.name + ".adam_m", DType::F32, shape_of(p),
                      static_cast<const void*>(store.moment1() + p.offset));
    writer.add_tensor(p.spec.name + ".adam_v", DType::F32, shape_of(p),
                      static_cast<const void*>(store.moment2() + p.offset));
  }
  writer.write(checkpoint_file(dir));
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
  auto read = [&](const std::string& name, const ParamTensor& p, float* dst) {
    const gguf::TensorInfo* info = file->find_tensor(name);
    if (!info) fail(path, ": tensor ", name, " is missing (a checkpoint of another model?)");
    if (info->type != DType::F32 || info->n_dims != p.spec.n_dims ||
        !std::equal(p.spec.ne.begin(), p.spec.ne.begin() + p.spec.n_dims, info->ne.begin()))
      fail(path, ": tensor ", name, " is not F32 ", p.spec.shape_string());
    std::memcpy(dst, file->tensor(*info).data, static_cast<size_t>(p.numel) * sizeof(float));
  };
  for (const ParamTensor& p : store.tensors()) {
    read(p.spec.name, p, store.params() + p.offset);
    read(p.spec.name + ".adam_m", p, store.moment1() + p.offset);
    read(p.spec.name + ".adam_v", p, store.moment2() + p.offset);
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
