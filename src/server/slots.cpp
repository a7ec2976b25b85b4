#include "server/slots.h"

namespace xtile::server {

Work::Work(std::shared_ptr<Job> j, const Tokenizer& tokenizer)
    : job(std::move(j)),
      input(job->prompt()),
      n_prompt(job->prompt().size()),
      sampler(job->params().sampler),
      text(tokenizer, job->params().stop, job->params().at_sequence_start),
      submitted(Clock::now()) {
  stats.prompt_tokens = static_cast<int64_t>(n_prompt);
}

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

int pick_slot(std::span<const Slot> slots, std::span<const int32_t> prompt) {
  int best = -1;
  size_t best_prefix = 0;
  for (const Slot& s : slots) {
    if (s.work) continue;
    const size_t p = common_prefix(s.cache, prompt);
    if (best < 0 || p > best_prefix ||
        (p == best_prefix && s.last_used < slots[static_cast<size_t>(best)].last_used)) {
      best = s.id;
      best_prefix = p;
    }
  }
  return best;
}

}  // namespace xtile::server
