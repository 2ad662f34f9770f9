// The MPI process group of `toy train` / `toy finetune` (train/communicator.h).
// MPI's world is one per process by nature, so it is held here, connected by main
// before such a command runs and ended when the process exits; everything below
// the CLI receives it explicitly.
#pragma once

#include <string>

#include "train/communicator.h"

namespace toy::cli {

// Connects to the launcher's world (mpirun), or a single process when not launched by one.
void connect_process_group(int* argc, char*** argv);
// The connected group (a single process when connect_process_group was not called).
train::Communicator& process_group();
// Prints a command's error line on stderr. In a group of several ranks the others may be
// waiting for this one in a collective, so the whole job then ends (MPI_Abort, exit code 1);
// ranks other than 0 first give rank 0 a moment to end the job, so that an error every rank
// meets (a bad flag) is printed once. Returns normally for a single process.
void report_error(const std::string& line);

}  // namespace toy::cli
