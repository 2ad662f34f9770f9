// Copying a GGUF file's contents into a Writer: `toy quantize`, checkpoints and
// the round-trip tests start from an existing file and change only some of it.
#pragma once

#include "gguf/reader.h"
#include "gguf/writer.h"

namespace toy::gguf {

// Sets every metadata pair of `from` on `to`, in file order (including general.alignment, so the
// copy keeps the source's alignment). Keys `to` already has are replaced in place.
void copy_metadata(const File& from, Writer& to);

// Adds every tensor of `from` to `to`, in file order, as views of its mapping: `from` must stay
// open until `to.write()` returns.
void copy_tensors(const File& from, Writer& to);

}  // namespace toy::gguf
