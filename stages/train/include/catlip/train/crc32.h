// catlip/train/crc32.h - CRC-32 (IEEE 802.3, as zlib's crc32) for checkpoint
// integrity checks. Incremental: crc = crc32_update(crc, data, n), start at 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace catlip::train {

uint32_t crc32_update(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32(const void* data, size_t n) { return crc32_update(0, data, n); }

}  // namespace catlip::train
