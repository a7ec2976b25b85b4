// KL-divergence base files in llama-perplexity's own format (--kl-divergence-base), so that a
// base written by xtile is read by llama-perplexity and the other way round. Little-endian:
//
//   char[8]  "_logits_"
//   int32    n_ctx                      tokens per chunk
//   int32    n_vocab
//   int32    n_chunk
//   int32    tokens[n_chunk · n_ctx]    the text's tokens as tokenized (BOS not substituted)
//   per chunk, per scored position (n_ctx − 1 − n_ctx/2 of them):
//            uint16 row[encoded_row_size(n_vocab)]   model/log_probs.h: scale, min, codes
//
// The reader checks the magic, the header's ranges, the token ids and that the file size is
// exactly what the header announces, before anything is evaluated: a truncated or padded file,
// or one from another vocabulary, is an error that names the file and what is wrong.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace xtile {

struct KldBaseHeader {
  int32_t n_ctx = 0;
  int32_t n_vocab = 0;
  int32_t n_chunk = 0;
  int64_t rows_per_chunk() const { return n_ctx - 1 - n_ctx / 2; }
  int64_t row_size() const;  // uint16 values per row
  uint64_t file_size() const;
};

inline constexpr char kKldBaseMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

// Writes "<path>.tmp" and renames it over `path` in finish(): an interrupted run leaves no
// base file that looks complete.
class KldBaseWriter {
 public:
  // tokens: the first n_chunk · n_ctx tokens of the text.
  KldBaseWriter(const std::string& path, const KldBaseHeader& header,
                std::span<const int32_t> tokens);
  ~KldBaseWriter();
  KldBaseWriter(const KldBaseWriter&) = delete;
  KldBaseWriter& operator=(const KldBaseWriter&) = delete;

  // One chunk's rows: rows_per_chunk() · row_size() values, chunks in order.
  void write_chunk(std::span<const uint16_t> rows);
  // Checks that every chunk was written, closes and renames; throws on an I/O error.
  void finish();

 private:
  void write(const void* data, size_t bytes);
  std::string path_;
  std::string tmp_path_;
  KldBaseHeader header_;
  FILE* file_ = nullptr;
  int64_t chunks_written_ = 0;
};

class KldBaseReader {
 public:
  // Opens and validates the whole layout (see above); throws xtile::Error naming the problem.
  explicit KldBaseReader(const std::string& path);
  ~KldBaseReader();
  KldBaseReader(const KldBaseReader&) = delete;
  KldBaseReader& operator=(const KldBaseReader&) = delete;

  const KldBaseHeader& header() const { return header_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::string& path() const { return path_; }
  // Reads the next chunk's rows into `rows` (resized to rows_per_chunk() · row_size()).
  void read_chunk(std::vector<uint16_t>* rows);

 private:
  std::string path_;
  KldBaseHeader header_;
  std::vector<int32_t> tokens_;
  FILE* file_ = nullptr;
  int64_t chunks_read_ = 0;
};

}  // namespace xtile
