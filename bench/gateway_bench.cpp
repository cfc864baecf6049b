// Gateway benchmark: charges per second and client CPU time per request, the real PortOne
// client against portone-sim on 127.0.0.1 with simulated latency. Prints figures; asserts
// nothing. Usage:
//   gateway_bench --sim PATH [--requests 5000] [--in-flight 64] [--latency-ms 50]
#include <fmt/core.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "gateway/http_client.hpp"

extern char** environ;

namespace {

struct sim_process {
    pid_t pid = -1;
    int port = 0;
    sim_process(const std::string& path, int latency_ms) {
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
        posix_spawn_file_actions_addclose(&actions, fds[0]);
        const std::string fault = "charge:latency_ms=" + std::to_string(latency_ms) + ":1.0";
        std::vector<std::string> args{path,         "--port",  "0",  "--prefix",
                                      "bench-=pay", "--fault", fault};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start " + path);
        posix_spawn_file_actions_destroy(&actions);
        close(fds[1]);
        std::string line;
        char c;
        while (read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
        close(fds[0]);
        const auto colon = line.rfind(':');
        if (line.rfind("listening on", 0) != 0 || colon == std::string::npos)
            throw std::runtime_error("portone-sim did not start: " + line);
        port = std::stoi(line.substr(colon + 1));
    }
    ~sim_process() {
        if (pid > 0) {
            kill(pid, SIGTERM);
            waitpid(pid, nullptr, 0);
        }
    }
};

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Measures the PortOne client against portone-sim."};
    std::string sim_path;
    int requests = 5000;
    std::size_t in_flight = 64;
    int latency_ms = 50;
    app.add_option("--sim", sim_path, "path to the portone-sim binary")->required();
    app.add_option("--requests", requests, "charges to send");
    app.add_option("--in-flight", in_flight, "max requests in flight");
    app.add_option("--latency-ms", latency_ms, "simulated PortOne latency");
    CLI11_PARSE(app, argc, argv);

    sim_process sim(sim_path, latency_ms);
    boost::asio::io_context io;
    billingd::gateway::http_client_options options;
    options.base_url = "http://127.0.0.1:" + std::to_string(sim.port);
    options.imp_key = "sim_key";
    options.imp_secret = "sim_secret";
    options.max_in_flight = in_flight;
    auto client = billingd::gateway::make_http_client(io, options);

    int paid = 0;
    int other = 0;
    const auto started = std::chrono::steady_clock::now();
    const double cpu_before = cpu_seconds();
    for (int i = 0; i < requests; ++i) {
        billingd::gateway::charge_request request;
        request.customer_uid = "bench-" + std::to_string(i % 1000);
        request.merchant_uid = "bench-" + std::to_string(getpid()) + "-" + std::to_string(i);
        request.amount = 1000;
        request.name = "bench";
        boost::asio::co_spawn(
            io,
            [&client, &paid, &other, request]() -> boost::asio::awaitable<void> {
                auto r = co_await client->charge(request);
                (r.journal.result == billingd::gateway::outcome::paid ? paid : other)++;
            },
            boost::asio::detached);
    }
    io.run();
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double cpu = cpu_seconds() - cpu_before;
    fmt::print("requests={} paid={} other={} in_flight={} latency_ms={}\n", requests, paid, other,
               in_flight, latency_ms);
    fmt::print(
        "wall_s={:.3f} requests_per_s={:.0f} client_cpu_s={:.3f} cpu_us_per_request={:.1f}\n", wall,
        requests / wall, cpu, cpu * 1e6 / requests);
    return other == 0 ? 0 : 1;
}
