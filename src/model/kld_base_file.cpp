#include "model/kld_base_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "model/log_probs.h"

namespace xtile {

namespace {

constexpr uint64_t kHeaderBytes = sizeof(kKldBaseMagic) + 3 * sizeof(int32_t);

// The size the header announces, in 128 bits: a corrupt header (n_chunk 2^31, n_vocab 2^31)
// must not wrap around to a size that happens to match.
unsigned __int128 announced_size(const KldBaseHeader& h) {
  using U = unsigned __int128;
  return U{kHeaderBytes} + U(h.n_chunk) * U(h.n_ctx) * sizeof(int32_t) +
         U(h.n_chunk) * U(h.rows_per_chunk()) * U(h.row_size()) * sizeof(uint16_t);
}

}  // namespace

int64_t KldBaseHeader::row_size() const {
  return encoded_row_size(n_vocab);
}

uint64_t KldBaseHeader::file_size() const {
  return static_cast<uint64_t>(announced_size(*this));
}

KldBaseWriter::KldBaseWriter(const std::string& path, const KldBaseHeader& header,
                             std::span<const int32_t> tokens)
    : path_(path), tmp_path_(path + ".tmp"), header_(header) {
  if (header.n_ctx < 3 || header.n_vocab < 1 || header.n_chunk < 1)
    fail("KL-divergence base '", path, "': bad header (n_ctx ", header.n_ctx, ", n_vocab ",
         header.n_vocab, ", n_chunk ", header.n_chunk, ")");
  if (static_cast<int64_t>(tokens.size()) != int64_t{header.n_chunk} * header.n_ctx)
    fail("KL-divergence base '", path, "': ", tokens.size(), " tokens given for ", header.n_chunk,
         " chunks of ", header.n_ctx);
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!file_) fail("cannot write KL-divergence base '", tmp_path_, "': ", std::strerror(errno));
  write(kKldBaseMagic, sizeof(kKldBaseMagic));
  write(&header.n_ctx, sizeof(int32_t));
  write(&header.n_vocab, sizeof(int32_t));
  write(&header.n_chunk, sizeof(int32_t));
  write(tokens.data(), tokens.size_bytes());
}

KldBaseWriter::~KldBaseWriter() {
  if (file_) {  // not finished: drop the partial file
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

void KldBaseWriter::write(const void* data, size_t bytes) {
  if (bytes != 0 && std::fwrite(data, 1, bytes, file_) != bytes)
    fail("error writing KL-divergence base '", tmp_path_, "': ", std::strerror(errno));
}

void KldBaseWriter::write_chunk(std::span<const uint16_t> rows) {
  if (chunks_written_ >= header_.n_chunk)
    fail("KL-divergence base '", path_, "': more than the ", header_.n_chunk,
         " chunks of the header written");
  if (static_cast<int64_t>(rows.size()) != header_.rows_per_chunk() * header_.row_size())
    fail("KL-divergence base '", path_, "': a chunk of ", rows.size(), " values, expected ",
         header_.rows_per_chunk() * header_.row_size());
  write(rows.data(), rows.size_bytes());
  ++chunks_written_;
}

void KldBaseWriter::finish() {
  if (chunks_written_ != header_.n_chunk)
    fail("KL-divergence base '", path_, "': ", chunks_written_, " of ", header_.n_chunk,
         " chunks written");
  const bool bad = std::ferror(file_) != 0;
  const bool close_failed = std::fclose(file_) != 0;
  file_ = nullptr;
  if (bad || close_failed) {
    std::remove(tmp_path_.c_str());
    fail("error writing KL-divergence base '", tmp_path_, "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp_path_, path_, ec);
  if (ec) fail("cannot rename '", tmp_path_, "' to '", path_, "': ", ec.message());
}

KldBaseReader::KldBaseReader(const std::string& path) : path_(path) {
  const std::string what = "KL-divergence base '" + path + "'";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(what, " does not exist or is not a file");
  const uint64_t actual = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot read ", what, ": ", ec.message());
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) fail("cannot read ", what, ": ", std::strerror(errno));

  char magic[sizeof(kKldBaseMagic)];
  int32_t fields[3];
  if (actual < kHeaderBytes || std::fread(magic, 1, sizeof(magic), file_) != sizeof(magic) ||
      std::memcmp(magic, kKldBaseMagic, sizeof(magic)) != 0)
    fail(what, " is not a llama-perplexity log-probability file (no \"_logits_\" header)");
  if (std::fread(fields, sizeof(int32_t), 3, file_) != 3) fail("cannot read the header of ", what);
  header_ = {fields[0], fields[1], fields[2]};
  if (header_.n_ctx < 3)
    fail(what, ": bad context size ", header_.n_ctx, " in the header (at least 3)");
  if (header_.n_vocab < 1) fail(what, ": bad vocabulary size ", header_.n_vocab, " in the header");
  if (header_.n_chunk < 1) fail(what, ": bad chunk count ", header_.n_chunk, " in the header");
  const unsigned __int128 expected = announced_size(header_);
  if (expected != actual) {
    const bool longer = expected > actual;
    fail(what, " is ", longer ? "truncated" : "longer than its header says", ": ", actual,
         " bytes, the header (n_ctx ", header_.n_ctx, ", n_vocab ", header_.n_vocab, ", ",
         header_.n_chunk, " chunks) needs ",
         expected > UINT64_MAX ? std::string("more than 2^64")
                               : std::to_string(static_cast<uint64_t>(expected)));
  }
  tokens_.resize(static_cast<size_t>(header_.n_chunk) * static_cast<size_t>(header_.n_ctx));
  if (std::fread(tokens_.data(), sizeof(int32_t), tokens_.size(), file_) != tokens_.size())
    fail("cannot read the tokens of ", what);
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i] < 0 || tokens_[i] >= header_.n_vocab)
      fail(what, ": token ", i, " is ", tokens_[i], ", outside its vocabulary of ",
           header_.n_vocab);
}

KldBaseReader::~KldBaseReader() {
  if (file_) std::fclose(file_);
}

void KldBaseReader::read_chunk(std::vector<uint16_t>* rows) {
  if (chunks_read_ >= header_.n_chunk)
    fail("KL-divergence base '", path_, "' has only ", header_.n_chunk, " chunks");
  rows->resize(static_cast<size_t>(header_.rows_per_chunk() * header_.row_size()));
  if (std::fread(rows->data(), sizeof(uint16_t), rows->size(), file_) != rows->size())
    fail("cannot read chunk ", chunks_read_ + 1, " of KL-divergence base '", path_, "'");
  ++chunks_read_;
}

}  // namespace xtile
