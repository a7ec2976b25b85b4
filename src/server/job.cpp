#include "server/job.h"

namespace xtile::server {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
    case FinishReason::kNone:
      break;
  }
  return nullptr;
}

uint64_t JobSignal::count() const {
  std::lock_guard lock(mu_);
  return count_;
}

void JobSignal::wait_past(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return count_ != seen; });
}

void JobSignal::notify() {
  {
    std::lock_guard lock(mu_);
    ++count_;
  }
  cv_.notify_all();
}

void Job::notify() {
  cv_.notify_all();
  if (signal_) signal_->notify();
}

bool Job::wait(Cursor* cursor, Update* out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  auto news = [&] {
    return done_ || text_.size() > cursor->text || tokens_.size() > cursor->tokens;
  };
  if (!cv_.wait_for(lock, timeout, news)) return false;
  out->text.assign(text_, cursor->text);
  out->tokens.assign(tokens_.begin() + static_cast<std::ptrdiff_t>(cursor->tokens), tokens_.end());
  out->done = done_;
  cursor->text = text_.size();
  cursor->tokens = tokens_.size();
  return true;
}

FinishReason Job::finish_reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

std::string Job::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

int Job::error_status() const {
  std::lock_guard lock(mu_);
  return error_status_;
}

JobStats Job::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kLast:
      return "last";
    case Pooling::kMean:
      return "mean";
    case Pooling::kTokens:
      return "none";
    case Pooling::kNone:
      break;
  }
  return "";
}

std::vector<std::vector<float>> Job::embedding() const {
  std::lock_guard lock(mu_);
  return embedding_;
}

void Job::set_embedding(std::vector<std::vector<float>> embedding) {
  std::lock_guard lock(mu_);
  embedding_ = std::move(embedding);
}

void Job::publish(std::string_view text, std::vector<TokenOut>* tokens) {
  if (text.empty() && tokens->empty()) return;
  {
    std::lock_guard lock(mu_);
    text_ += text;
    for (TokenOut& t : *tokens) tokens_.push_back(std::move(t));
  }
  tokens->clear();
  notify();
}

void Job::finish(FinishReason reason, const JobStats& stats) {
  {
    std::lock_guard lock(mu_);
    done_ = true;
    reason_ = reason;
    stats_ = stats;
  }
  notify();
}

void Job::fail(std::string message, int status, const JobStats& stats) {
  {
    std::lock_guard lock(mu_);
    done_ = true;
    reason_ = FinishReason::kError;
    error_ = std::move(message);
    error_status_ = status;
    stats_ = stats;
  }
  notify();
}

}  // namespace xtile::server
