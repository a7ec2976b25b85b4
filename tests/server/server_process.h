// The real `xtile serve` binary for tests: started on a free loopback port (--port 0; the port
// is read from its "listening on" line), ready once /health says 200, stopped with SIGTERM.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

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
// tiny-llama's shape (2 layers, width 128), q4_0, on the real Llama-3 vocabulary (its plain
// Llama 3 template: a test picks llama3.1 with --chat-template); "" when the vocabulary fixture
// is absent.
std::string llama3_model();
// Its vocabulary with Qwen2.5-Coder's fill-in-the-middle tokens appended as control tokens
// (<|fim_prefix|>, <|fim_middle|>, <|fim_suffix|>, <|repo_name|>, <|file_sep|>), and the same
// model with that vocabulary; "" when the vocabulary fixture is absent.
std::string fim_vocab();
std::string fim_model();

// A test suite's one server on the stories260K fixture, started before its first test with the
// suite's flags (`static constexpr const char* kFlags[]` in Suite) and stopped after its last;
// the tests skip, saying why, when the fixture is absent.
template <class Suite>
class StoriesSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string model = fixture_path("models/stories260K.gguf");
    if (model.empty()) return;
    std::vector<std::string> args = {"-m", model};
    for (const char* f : Suite::kFlags) args.push_back(f);
    server_ = new ServerProcess(args);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_) GTEST_SKIP() << "../shared/fixtures/models/stories260K.gguf is absent";
    ASSERT_TRUE(server_->ok());
    port_ = server_->port();
  }
  static inline ServerProcess* server_ = nullptr;
  int port_ = 0;
};

}  // namespace xtile::test
