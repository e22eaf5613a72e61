// catlip/model/checkpoint_file.h - the on-disk frame around a checkpoint.
//
// A checkpoint is a safetensors payload (tensors + string metadata) inside a
// 32-byte frame so that a truncated or corrupted file is recognised before
// anything is loaded from it:
//
//   bytes 0..7    magic "CATLIPCK"
//   bytes 8..11   u32 LE frame version (1)
//   bytes 12..15  u32 LE CRC-32 of the payload
//   bytes 16..23  u64 LE payload length
//   bytes 24..31  u64 LE training step (also in the metadata; here so a
//                 listing needs no parse)
//   payload       safetensors bytes
//
// Files are "ckpt-<step, 10 digits>.catlip" in the checkpoint directory,
// written atomically (temporary file, fsync, rename).
//
// The trainer's payload (see trainer.cpp) holds tensors
//   model.<timm name>            parameters and buffers
//   ema.<timm name>              EMA weights (when ema_decay > 0)
//   optim.exp_avg.<name>         AdamW first moments
//   optim.exp_avg_sq.<name>      AdamW second moments
//   rng.cpu                      CPU generator state (uint8)
// and metadata catlip.format, catlip.step, catlip.optim_steps, catlip.model
// (ViTConfig string), catlip.vocab_checksum, catlip.vocab_size,
// catlip.data_position (data_position.h: the exact consumed set, version 2;
// version 1 {"url": [epoch, shard, index]} is still read), catlip.ema_decay,
// catlip.lr_at_step. Being safetensors inside, a checkpoint's payload can be
// read by any safetensors reader after skipping the 32-byte frame.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "catlip/status.h"
#include "catlip/model/safetensors.h"

namespace catlip::model {

constexpr char kCheckpointMagic[8] = {'C', 'A', 'T', 'L', 'I', 'P', 'C', 'K'};
constexpr size_t kCheckpointFrameBytes = 32;

std::string checkpoint_file_name(int64_t step);

// Writes <dir>/ckpt-<step>.catlip atomically; returns its path.
std::string write_checkpoint_file(const std::string& dir, int64_t step,
                                  const std::map<std::string, std::string>& metadata,
                                  const std::vector<TensorView>& tensors);

// Reads and verifies a checkpoint. Any problem is a failed Result whose
// message names the file: NotFound (cannot be read) or Invalid (truncated,
// bad magic, CRC mismatch, unparsable payload).
Result<SafeTensorsFile> read_checkpoint_file(const std::string& path);

// Checkpoint files in `dir`, newest (highest step) first.
std::vector<std::string> list_checkpoints(const std::string& dir);

// Removes all but the newest `keep` checkpoints (keep <= 0: remove none).
void prune_checkpoints(const std::string& dir, int keep);

}  // namespace catlip::model
