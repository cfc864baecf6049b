// The exec transport: posix_spawn + Asio timers and a pipe; no Beast.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "outbox/transports.hpp"

extern char** environ;

namespace billingd::outbox {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using steady = std::chrono::steady_clock;

constexpr std::size_t output_tail = 300;

// What the program said last (its stdout and stderr), printable, for last_error.
struct output_state {
    explicit output_state(asio::any_io_executor ex, int fd) : pipe(ex, fd) {}
    asio::posix::stream_descriptor pipe;
    std::string tail;
    bool closed = false;
};

asio::awaitable<void> drain_output(std::shared_ptr<output_state> out) {
    char buffer[4096];
    for (;;) {
        error_code ec;
        const std::size_t n = co_await out->pipe.async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        out->tail.append(buffer, n);
        if (out->tail.size() > output_tail) out->tail.erase(0, out->tail.size() - output_tail);
    }
    out->closed = true;
}

std::string printable(std::string_view text) {
    std::string out;
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        out += (c < 0x20 || c == 0x7f) ? ' ' : ch;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

class exec_channel final : public channel {
  public:
    exec_channel(asio::io_context& io, exec_options o)
        : executor_(io.get_executor()), options_(std::move(o)) {
        // The hook sees none of billingd's environment (credentials may be there).
        for (const char* name : {"PATH", "LANG", "LC_ALL", "TZ"}) {
            if (const char* v = std::getenv(name)) base_env_.push_back(std::string(name) + "=" + v);
        }
        if (!std::getenv("PATH")) base_env_.push_back("PATH=/usr/local/bin:/usr/bin:/bin");
    }

    std::string_view name() const override { return "exec"; }

    asio::awaitable<attempt_result> deliver(outgoing m) override {
        int stdin_pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stdin_pair) != 0)
            co_return attempt_result{false, std::string("socketpair: ") + std::strerror(errno)};
        fd_guard in_parent{stdin_pair[0]}, in_child{stdin_pair[1]};
        int out_pipe[2];
        if (::pipe2(out_pipe, O_CLOEXEC) != 0)
            co_return attempt_result{false, std::string("pipe: ") + std::strerror(errno)};
        fd_guard out_parent{out_pipe[0]}, out_child{out_pipe[1]};

        std::vector<std::string> env = base_env_;
        env.push_back("BILLINGD_EVENT_ID=" + m.id);
        env.push_back("BILLINGD_EVENT_TYPE=" + m.type);
        env.push_back("BILLINGD_EVENT_TIMESTAMP=" + std::to_string(m.timestamp));
        std::vector<char*> envp;
        for (auto& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
        std::vector<std::string> args = options_.argv;
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, in_child.fd, 0);
        posix_spawn_file_actions_adddup2(&actions, out_child.fd, 1);
        posix_spawn_file_actions_adddup2(&actions, out_child.fd, 2);
        // Nothing else of billingd's reaches the hook: not the database, not the connections
        // to PortOne or the metrics listener (not every descriptor is opened close-on-exec).
        posix_spawn_file_actions_addclosefrom_np(&actions, 3);
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&defaults, s);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setpgroup(&attr, 0);  // its own group: a timeout kills all of it
        posix_spawnattr_setflags(
            &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
        pid_t pid = 0;
        const int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (rc != 0)
            co_return attempt_result{false,
                                     "cannot run " + options_.argv[0] + ": " + std::strerror(rc)};
        ::close(in_child.fd);
        in_child.fd = -1;
        ::close(out_child.fd);
        out_child.fd = -1;

        // The body fits the socket buffer; a program that exits without reading it is judged
        // by its exit status (MSG_NOSIGNAL: no SIGPIPE for billingd).
        std::size_t sent = 0;
        while (sent < m.body.size()) {
            const ssize_t n = ::send(in_parent.fd, m.body.data() + sent, m.body.size() - sent,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n <= 0) break;
            sent += static_cast<std::size_t>(n);
        }
        ::shutdown(in_parent.fd, SHUT_WR);
        ::close(in_parent.fd);
        in_parent.fd = -1;

        auto out = std::make_shared<output_state>(executor_, out_parent.fd);
        out_parent.fd = -1;  // owned by the descriptor now
        asio::co_spawn(executor_, drain_output(out), asio::detached);

        // Wait for the exit: waitpid polled with a short timer (one thread, no SIGCHLD
        // handler to share with anyone), bounded by the timeout.
        const auto deadline = steady::now() + options_.timeout;
        asio::steady_timer timer(executor_);
        auto poll = std::chrono::milliseconds{5};
        int status = 0;
        bool timed_out = false;
        for (;;) {
            const pid_t r = ::waitpid(pid, &status, WNOHANG);
            if (r == pid) break;
            if (r < 0 && errno != EINTR) {
                status = -1;
                break;
            }
            if (steady::now() >= deadline) {
                // The process group, and the hook itself in case it left the group (setsid):
                // then reaped without blocking, since this thread also runs the charging.
                ::kill(-pid, SIGKILL);
                ::kill(pid, SIGKILL);
                for (int i = 0; i < 200 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) {
                    timer.expires_after(std::chrono::milliseconds{5});
                    error_code ec;
                    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                }
                timed_out = true;
                break;
            }
            timer.expires_after(std::min<steady::duration>(poll, deadline - steady::now()));
            error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            poll = std::min(poll * 2, std::chrono::milliseconds{50});
        }
        // Let the last output arrive (bounded: a grandchild may hold the pipe open).
        for (int i = 0; i < 10 && !out->closed; ++i) {
            timer.expires_after(std::chrono::milliseconds{5});
            error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        error_code ignored;
        out->pipe.close(ignored);
        const std::string said = printable(out->tail);
        const std::string suffix = said.empty() ? "" : ": " + said;
        if (timed_out)
            co_return attempt_result{false, "timed out after " +
                                                std::to_string(options_.timeout.count()) +
                                                " ms (killed)" + suffix};
        if (status == -1) co_return attempt_result{false, "waitpid failed"};
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) co_return attempt_result{true, {}};
        if (WIFEXITED(status))
            co_return attempt_result{false,
                                     "exit status " + std::to_string(WEXITSTATUS(status)) + suffix};
        co_return attempt_result{false,
                                 "killed by signal " + std::to_string(WTERMSIG(status)) + suffix};
    }

  private:
    asio::any_io_executor executor_;
    exec_options options_;
    std::vector<std::string> base_env_;
};

}  // namespace

std::optional<std::string> validate_exec_command(const std::vector<std::string>& argv) {
    if (argv.empty()) return "must name a program";
    const std::string& program = argv.front();
    if (program.empty() || program.front() != '/')
        return "the program must be an absolute path (no shell, no PATH search): '" + program + "'";
    struct stat st {};
    if (::stat(program.c_str(), &st) != 0)
        return "cannot find '" + program + "': " + std::strerror(errno);
    if (!S_ISREG(st.st_mode) || ::access(program.c_str(), X_OK) != 0)
        return "'" + program + "' is not an executable file";
    for (const auto& a : argv)
        if (a.find('\0') != std::string::npos) return "arguments must not contain NUL";
    return std::nullopt;
}

std::unique_ptr<channel> make_exec_channel(asio::io_context& io, exec_options o) {
    if (auto problem = validate_exec_command(o.argv)) throw std::invalid_argument(*problem);
    return std::make_unique<exec_channel>(io, std::move(o));
}

}  // namespace billingd::outbox
