// A read-only memory mapping of a whole file (models are mmap'd, never read into heap copies).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/float_contract.h"

namespace xtile {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` read-only; throws xtile::Error naming the file and the OS reason on failure.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Tells the kernel that [offset, offset+bytes) is no longer needed (after repacking): the
  // pages are dropped from this process's resident set; reading them again would re-fault them.
  void release(size_t offset, size_t bytes);

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace xtile
