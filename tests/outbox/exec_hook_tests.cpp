// The exec hook against programs that misbehave: it must come back within its timeout,
// because it runs on the thread that also charges.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>

#include "outbox/transports.hpp"
#include "outbox/worker.hpp"

namespace asio = boost::asio;
namespace ob = billingd::outbox;

TEST_CASE("a hook that leaves its process group and hangs is killed within its timeout") {
    asio::io_context io;
    ob::exec_options options;
    // Joins the process group of whoever started it, so that killing the hook's own group
    // does not reach it.
    options.argv = {"/usr/bin/python3", "-c",
                    "import os, time\n"
                    "os.setpgid(0, os.getpgid(os.getppid()))\n"
                    "time.sleep(30)\n"};
    options.timeout = std::chrono::milliseconds{300};
    auto hook = ob::make_exec_channel(io, options);
    ob::outgoing message;
    message.event_id = 1;
    message.id = "evt_test_1";
    message.type = "charge.paid";
    message.body = "{}";
    const auto started = std::chrono::steady_clock::now();
    auto result = asio::co_spawn(io, hook->deliver(message), asio::use_future);
    io.run();
    const auto r = result.get();
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK_FALSE(r.delivered);
    CAPTURE(r.error);
    CHECK(r.error.find("timed out") != std::string::npos);
    CHECK(took < std::chrono::seconds{10});  // not the hook's 30 s: the loop was never held
}

TEST_CASE("a hook gets standard input, output and error, and none of billingd's descriptors") {
    asio::io_context io;
    // A descriptor opened without close-on-exec, as a socket may be.
    const int inherited = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(inherited > 2);
    ob::exec_options options;
    // listdir() itself holds one descriptor while it reads the directory.
    options.argv = {"/usr/bin/python3", "-c",
                    "import os, sys\n"
                    "extra = [f for f in os.listdir('/proc/self/fd') if int(f) > 2]\n"
                    "print('open:', extra)\n"
                    "sys.exit(0 if len(extra) <= 1 else 1)\n"};
    options.timeout = std::chrono::milliseconds{10000};
    auto hook = ob::make_exec_channel(io, options);
    ob::outgoing message;
    message.event_id = 2;
    message.id = "evt_test_2";
    message.type = "charge.paid";
    message.body = "{}";
    auto result = asio::co_spawn(io, hook->deliver(message), asio::use_future);
    io.run();
    const auto r = result.get();
    ::close(inherited);
    CAPTURE(r.error);
    CHECK(r.delivered);
}
