// The real `xtile serve` binary for tests: started on a free loopback port (--port 0; the port
// is read from its "listening on" line), ready once /health says 200, stopped with SIGTERM.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace xtile::test {

class ServerProcess {
 public:
  // Starts `xtile serve --host 127.0.0.1 --port 0 <args>` and waits for its port, then (when
  // `wait_ready`) for /health 200. Fails the test (ADD_FAILURE) and leaves port() at 0 when it
  // does not get there in `timeout_s`.
  explicit ServerProcess(const std::vector<std::string>& args, int timeout_s = 120,
                         bool wait_ready = true);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  bool ok() const { return port_ > 0; }
  std::string log() const;
  // SIGTERM, then the exit status (-1 when it had to be killed).
  int stop();

 private:
  void read_output(int fd);
  pid_t pid_ = -1;
  int port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string log_;
  bool eof_ = false;
  std::thread reader_;
};

// One-layer qwen3-0.6b, q4_0, the real Qwen2 vocabulary and Qwen3's template: synthesized on
// first use into the build folder; "" when the vocabulary fixture is absent.
std::string slow_model();
// Its vocabulary with Qwen2.5-Coder's fill-in-the-middle tokens appended as control tokens
// (<|fim_prefix|>, <|fim_middle|>, <|fim_suffix|>, <|repo_name|>, <|file_sep|>), and the same
// model with that vocabulary; "" when the vocabulary fixture is absent.
std::string fim_vocab();
std::string fim_model();

}  // namespace xtile::test
