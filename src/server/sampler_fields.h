// llama-server's further sampler fields (model/sampler.h): typical_p, top_n_sigma, xtc_*,
// dynatemp_*, mirostat*, dry_* in a completion or chat request. Out of range or of the wrong
// type is a 400 naming the field; each left out stays neutral.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/sampler.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

// DRY's sequence breakers when DRY is on and the request names none (llama-server's).
std::vector<std::string> default_dry_breakers();

// Reads the fields into `s` (the server's defaults in it already); DRY's sequence breakers come
// back as strings (the request's, else `default_breakers`; empty while DRY is off) for
// dry_breaker_tokens.
void parse_sampler_extras(const nlohmann::ordered_json& body, SamplerParams* s,
                          const std::vector<std::string>& default_breakers,
                          std::vector<std::string>* dry_breakers);

// The vocabulary's tokens whose text holds one of the breakers, ascending (what DRY's matching
// stops at). The scan of the vocabulary is remembered per tokenizer and list.
std::vector<int32_t> dry_breaker_tokens(const Tokenizer& tok,
                                        const std::vector<std::string>& breakers);

}  // namespace xtile::server
