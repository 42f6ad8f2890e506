// A C++ gRPC client (Debian's libgrpc++) for the channel ledger's tests: every
// 200 ms it makes a channel to TARGET (newChannel) and waits for it to
// connect. In keep mode it keeps every channel, never releasing one (a leak);
// in drop mode each is released before the next is made.
//
//	cppchannels TARGET keep|drop
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

static std::shared_ptr<grpc::Channel> newChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  std::string target = argv[1];
  bool keep = std::strcmp(argv[2], "keep") == 0;
  std::vector<std::shared_ptr<grpc::Channel>> kept;
  for (;;) {
    auto channel = newChannel(target);
    channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    if (keep) kept.push_back(channel);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}
