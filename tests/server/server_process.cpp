#include "server_process.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>

#include "gguf/gguf.h"
#include "test_util.h"

extern char** environ;

namespace xtile::test {

ServerProcess::ServerProcess(const std::vector<std::string>& args, int timeout_s, bool wait_ready) {
  std::vector<std::string> argv = {xtile_binary(), "serve", "--host", "127.0.0.1", "--port", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe() failed";
    return;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  const int rc = posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    pid_ = -1;
    ADD_FAILURE() << "cannot start " << argv[0];
    return;
  }
  reader_ = std::thread([this, fd = fds[0]] { read_output(fd); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  {
    std::unique_lock lock(mu_);
    const std::regex listening(R"(listening on http://[0-9.]+:([0-9]+))");
    std::smatch m;
    cv_.wait_until(lock, deadline, [&] { return eof_ || std::regex_search(log_, m, listening); });
    if (std::regex_search(log_, m, listening)) port_ = std::stoi(m[1]);
  }
  if (port_ == 0) {
    ADD_FAILURE() << "xtile serve did not start listening:\n" << log();
    return;
  }
  if (!wait_ready) return;
  httplib::Client cli("127.0.0.1", port_);
  while (std::chrono::steady_clock::now() < deadline) {
    auto res = cli.Get("/health");
    if (res && res->status == 200) return;
    {
      std::lock_guard lock(mu_);
      if (eof_) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "xtile serve did not get ready:\n" << log();
  port_ = 0;
}

void ServerProcess::read_output(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    log_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
  }
  close(fd);
  std::lock_guard lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

std::string ServerProcess::log() const {
  std::lock_guard lock(mu_);
  return log_;
}

int ServerProcess::stop() {
  if (pid_ < 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  pid_t done = 0;
  while ((done = waitpid(pid_, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (done == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    status = -1;
  } else {
    status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  pid_ = -1;
  if (reader_.joinable()) reader_.join();
  return status;
}

ServerProcess::~ServerProcess() {
  stop();
}

namespace {

// A model synthesized with the given vocabulary (by default one-layer qwen3-0.6b, q4_0) into
// the build folder unless already there. CTest runs each test in its own process, two at a
// time: each writes its own temporary file (named by its pid) and renames it into place, so a
// test never reads another's half-written model.
std::string synth_once(const std::string& name, const std::string& vocab,
                       const std::string& extra_args = "",
                       const std::string& shape = "--preset qwen3-0.6b --layers 1") {
  const std::string out = std::string(XTILE_BINARY_DIR) + "/" + name;
  if (std::filesystem::exists(out)) return out;
  std::string log;
  const std::string tmp = out + ".tmp-" + std::to_string(getpid()) + ".gguf";
  std::string cmd = "'";  // appended piece by piece: g++ 12 warns (-Wrestrict) on a + chain
  cmd += xtile_binary();
  cmd += "' synth ";
  cmd += shape;
  cmd += " --type q4_0 --vocab '";
  cmd += vocab;
  cmd += "' ";
  cmd += extra_args;
  cmd += " -o '";
  cmd += tmp;
  cmd += "'";
  const int rc = run_command(cmd, &log);
  if (rc != 0) {
    ADD_FAILURE() << "xtile synth failed:\n" << log;
    return std::string();
  }
  std::filesystem::rename(tmp, out);
  return out;
}

}  // namespace

std::string slow_model() {
  static const std::string path = [] {
    const std::string vocab = fixture_path("tokenizers/vocab-qwen2.gguf");
    return vocab.empty() ? std::string() : synth_once("server-test-qwen3-1L-q4_0.gguf", vocab);
  }();
  return path;
}

std::string llama3_model() {
  static const std::string path = [] {
    const std::string vocab = fixture_path("tokenizers/vocab-llama3.gguf");
    return vocab.empty() ? std::string()
                         : synth_once("server-test-tiny-llama3-q4_0.gguf", vocab,
                                      "--vocab-size 128256", "--preset tiny-llama");
  }();
  return path;
}

std::string fim_vocab() {
  static const std::string path = [] {
    const std::string vocab = fixture_path("tokenizers/vocab-qwen2.gguf");
    if (vocab.empty()) return std::string();
    const std::string out = std::string(XTILE_BINARY_DIR) + "/vocab-qwen2-fim.gguf";
    if (std::filesystem::exists(out)) return out;
    const gguf::File in = gguf::File::open(vocab);
    gguf::Writer w;
    const char* added[] = {"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|repo_name|>",
                           "<|file_sep|>"};
    for (auto [key, value] : in.metadata()) {  // a copy: the vocabulary's arrays grow
      if (value.type == gguf::ValueType::ARRAY) {
        auto& items = std::get<gguf::Array>(value.data).items;
        for (const char* t : added) {
          if (key == "tokenizer.ggml.tokens") items.push_back(gguf::Value::string(t));
          if (key == "tokenizer.ggml.token_type") items.push_back(gguf::Value::i32(3));  // control
          if (key == "tokenizer.ggml.scores") items.push_back(gguf::Value::f32(0.0f));
        }
      }
      w.set(key, value);
    }
    const std::string tmp = out + ".tmp-" + std::to_string(getpid()) + ".gguf";
    w.write(tmp);
    std::filesystem::rename(tmp, out);
    return out;
  }();
  return path;
}

std::string fim_model() {
  static const std::string path = [] {
    const std::string vocab = fim_vocab();
    return vocab.empty() ? std::string()
                         : synth_once("server-test-qwen3-1L-fim-q4_0.gguf", vocab,
                                      "--vocab-size 152064");  // Qwen2.5's
  }();
  return path;
}

}  // namespace xtile::test
