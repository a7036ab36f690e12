// A native gRPC load generator for bench/api_sessions.py: unary calls of one method from N
// closed-loop clients spread over M connections, with gRPC C++'s callback API.
//
// Why native: the benchmark runs on the same two cores as what it measures, and a Python gRPC
// client spends ~100 us of CPU per call, which the API under test then cannot use. This is the
// role ghz or h2load play elsewhere; it knows nothing of EdgeCUPS' messages.
//
//   create_load TARGET METHOD CLIENTS CONNECTIONS [CONNECT_SECONDS]
//
// As in ghz (-c, --connections), the clients share the connections, client k the (k mod M)th: an
// HTTP/2 connection carries many calls at once, and a gRPC client process opens one per channel.
// It prints "connected" once every connection is up (within CONNECT_SECONDS, 60 by default; else it
// exits 1). Then, per line "round IN OUT" on stdin, it
// sends each request of IN (u32 big-endian length, then the serialized message; as many as the
// file holds) from CLIENTS clients, each with one call outstanding, writes every answer to OUT in
// the same framing and order (length 0 for a call that failed), and prints one JSON line:
// {"wall_s", "cpu_s" (this process's CPU over the round), "latencies" (ms, per successful call),
// "errors" ({"CODE: message": count})}. EOF or "quit" ends it. The caller parses and checks the
// answers; this program only moves bytes.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <arpa/inet.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool read_frames(const std::string& path, std::vector<std::string>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  uint32_t length = 0;
  while (in.read(reinterpret_cast<char*>(&length), 4)) {
    std::string body(ntohl(length), '\0');
    if (!in.read(body.data(), static_cast<std::streamsize>(body.size()))) return false;
    out->push_back(std::move(body));
  }
  return in.eof();
}

bool write_frames(const std::string& path, const std::vector<std::string>& frames) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const std::string& frame : frames) {
    uint32_t length = htonl(static_cast<uint32_t>(frame.size()));
    out.write(reinterpret_cast<const char*>(&length), 4);
    out.write(frame.data(), static_cast<std::streamsize>(frame.size()));
  }
  return static_cast<bool>(out);
}

std::string json_string(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      quoted += escaped;
    } else {
      quoted += c;
    }
  }
  return quoted + "\"";
}

// One round: every request sent once, CLIENTS at a time, each client's next call started from
// the previous one's completion (gRPC's callback threads).
class Round {
 public:
  Round(std::vector<std::unique_ptr<grpc::GenericStub>>* stubs, size_t clients, const std::string& method,
        std::vector<std::string> requests)
      : stubs_(stubs), clients_(clients), method_(method), requests_(std::move(requests)),
        answers_(requests_.size()), latencies_(requests_.size(), -1.0) {}

  void run() {
    started_ = Clock::now();
    size_t clients = std::min(clients_, requests_.size());
    active_ = clients;
    if (clients == 0) return;
    for (size_t client = 0; client < clients; ++client) next(client);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return active_ == 0; });
    wall_ = std::chrono::duration<double>(Clock::now() - started_).count();
  }

  std::string report(double cpu) const {
    std::ostringstream json;
    json << "{\"wall_s\": " << wall_ << ", \"cpu_s\": " << cpu << ", \"latencies\": [";
    bool first = true;
    for (double ms : latencies_) {
      if (ms < 0) continue;
      json << (first ? "" : ", ") << ms;
      first = false;
    }
    json << "], \"errors\": {";
    first = true;
    for (const auto& [error, count] : errors_) {
      json << (first ? "" : ", ") << json_string(error) << ": " << count;
      first = false;
    }
    json << "}}";
    return json.str();
  }

  const std::vector<std::string>& answers() const { return answers_; }

 private:
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    Clock::time_point started;
    size_t index = 0;
  };

  void next(size_t client) {
    size_t index = next_index_.fetch_add(1);
    if (index >= requests_.size()) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--active_ == 0) done_.notify_one();
      return;
    }
    auto* call = new Call();
    call->index = index;
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Slice slice(requests_[index]);
    call->request = grpc::ByteBuffer(&slice, 1);
    call->started = Clock::now();
    (*stubs_)[client % stubs_->size()]->UnaryCall(&call->context, method_, grpc::StubOptions(), &call->request, &call->response,
                                 [this, call, client](grpc::Status status) { finish(call, client, status); });
  }

  void finish(Call* call, size_t client, const grpc::Status& status) {
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - call->started).count();
    if (status.ok()) {
      std::vector<grpc::Slice> slices;
      (void)call->response.Dump(&slices);
      std::string& answer = answers_[call->index];
      for (const grpc::Slice& slice : slices) answer.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      latencies_[call->index] = ms;
    } else {
      std::lock_guard<std::mutex> lock(mutex_);
      ++errors_[std::to_string(status.error_code()) + ": " + status.error_message().substr(0, 100)];
    }
    delete call;
    next(client);
  }

  std::vector<std::unique_ptr<grpc::GenericStub>>* stubs_;
  const size_t clients_;
  const std::string method_;
  const std::vector<std::string> requests_;
  std::vector<std::string> answers_;
  std::vector<double> latencies_;
  std::map<std::string, int> errors_;
  std::atomic<size_t> next_index_{0};
  size_t active_ = 0;
  std::mutex mutex_;
  std::condition_variable done_;
  Clock::time_point started_;
  double wall_ = 0.0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::cerr << "usage: create_load TARGET METHOD CLIENTS CONNECTIONS [CONNECT_SECONDS]\n";
    return 2;
  }
  const std::string target = argv[1];
  const std::string method = argv[2];
  const int clients = std::atoi(argv[3]);
  const int connections = std::atoi(argv[4]);
  const int connect_seconds = argc == 6 ? std::atoi(argv[5]) : 60;
  if (clients <= 0 || connections <= 0 || connections > clients || connect_seconds <= 0) {
    std::cerr << "CLIENTS, CONNECTIONS and CONNECT_SECONDS must be positive, CONNECTIONS at most CLIENTS\n";
    return 2;
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int k = 0; k < connections; ++k) {
    // A local subchannel pool per channel: gRPC would otherwise share one subchannel (and so one
    // connection) among all channels to the same target with the same arguments.
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(connect_seconds))) {
      std::cerr << "cannot connect to " << target << "\n";
      return 1;
    }
    stubs.push_back(std::make_unique<grpc::GenericStub>(channels.back()));
  }
  std::cout << "connected" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string verb, in_path, out_path;
    words >> verb >> in_path >> out_path;
    if (verb == "quit") break;
    std::vector<std::string> requests;
    if (verb != "round" || out_path.empty() || !read_frames(in_path, &requests)) {
      std::cerr << "bad command: " << line << "\n";
      return 2;
    }
    Round round(&stubs, static_cast<size_t>(clients), method, std::move(requests));
    double cpu = cpu_seconds();
    round.run();
    cpu = cpu_seconds() - cpu;
    if (!write_frames(out_path, round.answers())) {
      std::cerr << "cannot write " << out_path << "\n";
      return 1;
    }
    std::cout << round.report(cpu) << std::endl;
  }
  return 0;
}
