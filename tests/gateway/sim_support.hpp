// Test support: runs portone-sim as a child process on a free loopback port and talks to its
// control endpoints with a tiny blocking HTTP/1.1 client (no Beast in the tests).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace sim_support {

class sim_process {
  public:
    explicit sim_process(std::vector<std::string> args) {
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        args.insert(args.begin(), PORTONE_SIM_EXE);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc = posix_spawn(&pid_, PORTONE_SIM_EXE, &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        close(out[1]);
        if (rc != 0) {
            close(out[0]);
            throw std::runtime_error("cannot start " PORTONE_SIM_EXE);
        }
        stdout_ = fdopen(out[0], "r");
        char line[256] = {};
        if (!stdout_ || !fgets(line, sizeof line, stdout_)) {
            stop();
            throw std::runtime_error("portone-sim printed nothing");
        }
        const std::string text(line);
        const auto colon = text.rfind(':');
        if (text.rfind("listening on 127.0.0.1:", 0) != 0 || colon == std::string::npos) {
            stop();
            throw std::runtime_error("unexpected first line: " + text);
        }
        port_ = std::stoi(text.substr(colon + 1));
    }
    sim_process(const sim_process&) = delete;
    sim_process& operator=(const sim_process&) = delete;
    ~sim_process() { stop(); }

    int port() const { return port_; }
    std::string http_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    // Blocking request to the simulator; returns the body (Connection: close, Content-Length).
    std::string request(const std::string& method, const std::string& target,
                        const std::string& body = "") const {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port_));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            close(fd);
            throw std::runtime_error("cannot reach portone-sim");
        }
        std::string message = method + " " + target +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
        for (std::size_t sent = 0; sent < message.size();) {
            const auto n = send(fd, message.data() + sent, message.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<std::size_t>(n);
        }
        std::string answer;
        char buffer[4096];
        for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;)
            answer.append(buffer, static_cast<std::size_t>(n));
        close(fd);
        const auto split = answer.find("\r\n\r\n");
        return split == std::string::npos ? std::string() : answer.substr(split + 4);
    }

  private:
    void stop() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int status = 0;
            for (int i = 0; i < 200 && waitpid(pid_, &status, WNOHANG) == 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (waitpid(pid_, &status, WNOHANG) == 0) {
                kill(pid_, SIGKILL);
                waitpid(pid_, &status, 0);
            }
            pid_ = -1;
        }
        if (stdout_) fclose(stdout_);
        stdout_ = nullptr;
    }

    pid_t pid_ = -1;
    FILE* stdout_ = nullptr;
    int port_ = 0;
};

// A one-thread loopback HTTP server that answers each request with the next scripted
// response (one request per connection: it always answers "Connection: close"). The script
// gets the raw request (head and body) and returns the raw body to answer with.
class scripted_server {
  public:
    struct reply {
        int status;
        std::string body;
    };
    using script = std::function<reply(const std::string& raw_request)>;

    explicit scripted_server(script next) : next_(std::move(next)) {
        listener_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
        listen(listener_, 16);
        socklen_t length = sizeof address;
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~scripted_server() {
        shutdown(listener_, SHUT_RDWR);
        close(listener_);
        thread_.join();
    }
    std::string http_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::vector<std::string> requests() {
        std::lock_guard lock(mutex_);
        return requests_;
    }

  private:
    void serve() {
        for (;;) {
            const int fd = accept(listener_, nullptr, nullptr);
            if (fd < 0) return;
            std::string raw;
            char buffer[4096];
            std::size_t wanted = std::string::npos;
            while (raw.size() < wanted) {
                const auto n = recv(fd, buffer, sizeof buffer, 0);
                if (n <= 0) break;
                raw.append(buffer, static_cast<std::size_t>(n));
                const auto head_end = raw.find("\r\n\r\n");
                if (head_end != std::string::npos && wanted == std::string::npos) {
                    std::size_t body = 0;
                    const auto at = raw.find("Content-Length: ");
                    if (at != std::string::npos && at < head_end)
                        body = std::stoul(raw.substr(at + 16));
                    wanted = head_end + 4 + body;
                }
            }
            {
                std::lock_guard lock(mutex_);
                requests_.push_back(raw);
            }
            const reply r = next_(raw);
            const std::string answer = "HTTP/1.1 " + std::to_string(r.status) +
                                       " X\r\nContent-Type: application/json\r\n"
                                       "Connection: close\r\nContent-Length: " +
                                       std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
            send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
            close(fd);
        }
    }

    script next_;
    int listener_ = -1;
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::string> requests_;
};

// A loopback port nothing listens on (bound, then released).
inline int unused_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    close(fd);
    return ntohs(address.sin_port);
}

}  // namespace sim_support
