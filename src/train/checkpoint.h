// Checkpoints for exact resume (--save-every / --resume): one GGUF file,
// `DIR/state.gguf`, holding every trained tensor in F32 (`<name>`), its two AdamW
// moments (`<name>.adam_m`, `<name>.adam_v`), the trainer's state (step, the samplers'
// random-number states, which fix the data position too, and timers) and a description
// of the run that must match on resume. The file is written atomically (gguf::Writer:
// an unnamed temporary linked into place), so a kill at any moment leaves the previous
// checkpoint or the new one, never a broken one; one file means the parameters, moments
// and state can never come from different steps.
#pragma once

#include <string>
#include <vector>

#include "train/params.h"
#include "train/trainer.h"

namespace toy::train {

// What must be the same when a run resumes (shapes are checked tensor by tensor besides):
// pairs of a name ("batch", "lora-rank", "data") and a value as text.
using RunDescription = std::vector<std::pair<std::string, std::string>>;

// The path of the state file in checkpoint directory `dir`.
std::string checkpoint_file(const std::string& dir);

// Creates `dir` if needed and writes the checkpoint into it. The moments come from the
// store, which must hold them all, or from `moments` (Trainer::checkpoint_moments: under
// ZeRO-1 each rank holds a shard, and rank 0 gathers one tensor's moments at a time as it
// writes them, so the file is the same whatever the number of ranks).
void save_checkpoint(const std::string& dir, const ParamStore<float>& store,
                     const TrainerState& state, const RunDescription& run,
                     const MomentSource& moments = nullptr);
// On the ranks that do not write: their part of every gather save_checkpoint makes through
// `moments` (each tensor's m, then its v, in the store's order).
void send_checkpoint_moments(const ParamStore<float>& store, const MomentSource& moments);

// Reads the checkpoint in `dir` into the store's parameters and moments (those of the
// store's moment range: a ZeRO-1 rank reads its shard; the whole store when it has none
// yet) and returns the trainer state. Throws toy::Error naming the file and what differs
// when the checkpoint was written by a different run (another model, shape, adapter or data).
TrainerState load_checkpoint(const std::string& dir, ParamStore<float>& store,
                             const RunDescription& run);

}  // namespace toy::train
