// Owned, zero-initialised, 64-byte aligned memory (a cache line; also the AMX tile row size).
// Large buffers are mmap'd anonymously and advised for transparent huge pages, which cuts
// TLB misses when GEMV streams hundreds of MiB of packed weights.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/float_contract.h"

namespace xtile {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() { return reinterpret_cast<T*>(data_); }
  template <typename T>
  const T* as() const { return reinterpret_cast<const T*>(data_); }

 private:
  void reset();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes mmap'd (0: came from aligned_alloc)
};

}  // namespace xtile
