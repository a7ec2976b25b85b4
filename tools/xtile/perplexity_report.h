// What `xtile perplexity` prints: llama-perplexity's text forms (the running "[1]x,[2]y,..."
// line, "Final estimate: PPL = X +/- Y", the KL-divergence table and statistics blocks) and
// the same figures as JSON for -o json.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "model/perplexity.h"

namespace xtile::cli {

// "[3]12.3456," for the running PPL after chunk `chunk` (1-based).
std::string chunk_ppl_text(int64_t chunk, double ppl);
// "Final estimate: PPL = 12.3456 +/- 0.12345"
std::string final_estimate_text(const PerplexityState& s);

// The KL-divergence table: the header line, and one row per chunk with the running PPL(Q),
// ln(PPL(Q)/PPL(base)), KLD, RMS Δp and same-top fraction.
std::string kld_table_header();
std::string kld_table_row(const KldState& s);
// The three statistics blocks printed at the end (perplexity, KL divergence, token
// probability), llama-perplexity's lines and number formats.
std::string kld_summary_text(const KldStats& s);

nlohmann::json perplexity_json(const PerplexityState& s, const ChunkPlan& plan);
nlohmann::json kld_json(const KldState& s, const ChunkPlan& plan);

}  // namespace xtile::cli
