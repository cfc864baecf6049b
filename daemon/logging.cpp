#include "daemon/logging.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace billingd::daemon {
namespace {

bool logging_to_journal = false;

// systemd sets JOURNAL_STREAM=dev:inode of the stream it connected; a match means our stderr
// still goes to the journal (not redirected by a wrapper), so log there with priorities.
bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev &&
           static_cast<unsigned long long>(st.st_ino) == ino;
}

spdlog::level::level_enum level_of(const std::string& what) {
    if (what == "paid" || what == "skipped" || what == "declined" || what == "transient" ||
        what == "reconciled") {
        return spdlog::level::info;
    }
    if (what == "parked" || what == "halted") return spdlog::level::err;
    return spdlog::level::warn;  // unknown, canceled, anything new: worth a look
}

}  // namespace

void setup_logging(std::string_view level) {
    std::shared_ptr<spdlog::logger> logger;
    logging_to_journal = stderr_is_journal();
    if (logging_to_journal) {
        logger = std::make_shared<spdlog::logger>(
            "billingd", std::make_shared<spdlog::sinks::systemd_sink_st>("billingd"));
        logger->set_pattern("%v");
    } else {
        logger = std::make_shared<spdlog::logger>(
            "billingd", std::make_shared<spdlog::sinks::stderr_color_sink_st>());
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    }
    logger->set_level(spdlog::level::from_str(std::string(level)));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
}

int syslog_priority(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::err:
            return LOG_ERR;
        case spdlog::level::warn:
            return LOG_WARNING;
        default:
            return LOG_INFO;
    }
}

void log_decision(const scheduler::decision& d) {
    const auto level = level_of(d.what);
    const std::string merchant_uid = d.merchant_uid.empty() ? "-" : d.merchant_uid;
    const std::string line = fmt::format(
        "decision subscription_id={} charge_id={} merchant_uid={} outcome={} detail={}",
        d.subscription_id, d.charge_id, merchant_uid, d.what, d.detail.empty() ? "-" : d.detail);
    if (!logging_to_journal) {
        spdlog::log(level, "{}", line);
        return;
    }
    if (!spdlog::should_log(level)) return;
    // Structured fields, so `journalctl -u billingd MERCHANT_UID=s42-p3` finds one charge.
    sd_journal_send("MESSAGE=%s", line.c_str(), "PRIORITY=%d", syslog_priority(level),
                    "SYSLOG_IDENTIFIER=billingd", "SUBSCRIPTION_ID=%lld",
                    static_cast<long long>(d.subscription_id), "CHARGE_ID=%lld",
                    static_cast<long long>(d.charge_id), "MERCHANT_UID=%s", merchant_uid.c_str(),
                    "OUTCOME=%s", d.what.c_str(), nullptr);
}

void log_pass(const scheduler::pass_summary& s) {
    const bool quiet = s.materialised == 0 && s.sent == 0 && s.skipped == 0 && s.reconciled == 0 &&
                       s.parked == 0 && s.canceled == 0 && !s.halted;
    spdlog::log(quiet ? spdlog::level::debug : spdlog::level::info,
                "pass scheduled={} materialised={} sent={} paid={} paid_amount={} declined={} "
                "unknown={} transient={} refused={} parked={} skipped={} reconciled={} canceled={} "
                "work_left={}{}",
                s.scheduled, s.materialised, s.sent, s.paid, s.paid_amount, s.declined, s.unknown,
                s.transient, s.refused, s.parked, s.skipped, s.reconciled, s.canceled, s.work_left,
                s.halted ? " halted=" + s.halt_reason : std::string());
}

}  // namespace billingd::daemon
