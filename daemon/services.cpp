#include "daemon/services.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>
#include <string>

#include "daemon/notify.hpp"
#include "gateway/http_client.hpp"

namespace billingd::daemon {

std::unique_ptr<storage::store> open_store(const config& cfg) {
    storage::open_options options;
    options.path = cfg.database;
    options.on_busy = [](std::string_view what) {
        spdlog::warn("database busy: waiting for another connection's lock what={}", what);
        notify::status("waiting for a database lock held by another connection");
        notify::watchdog();
    };
    auto store = std::make_unique<storage::store>(std::move(options));
    try {
        store->claim_install_id(cfg.engine.merchant_uid_prefix);
    } catch (const storage::install_mismatch& e) {
        throw config_error(std::string("[billing] merchant_uid_prefix: ") + e.what());
    }
    return store;
}

std::unique_ptr<gateway::client> open_gateway(boost::asio::io_context& io, const config& cfg) {
    try {
        return gateway::make_http_client(io, cfg.portone);
    } catch (const std::invalid_argument& e) {
        throw config_error(std::string("[portone] ") + e.what());
    }
}

}  // namespace billingd::daemon
