// The concrete parts both run modes assemble: the store and the PortOne client.
// Errors: open_gateway turns the client's std::invalid_argument (bad base_url, unreadable
// ca_file) into config_error; open_store throws storage::error.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "daemon/config.hpp"
#include "gateway/client.hpp"
#include "storage/store.hpp"

namespace billingd::daemon {

// Opens (creates, migrates) the database. While an operator holds a write lock the store
// waits; each wait is logged and, under systemd, reported in STATUS= and fed to the watchdog
// (waiting for a lock is deliberate, not a hang).
//
// Then claims the database's install id (the first part of every merchant_uid): a new
// database takes [billing] merchant_uid_prefix, or a random id; a configuration naming a
// prefix other than the database's is a config_error (it belongs to another database).
std::unique_ptr<storage::store> open_store(const config& cfg);

std::unique_ptr<gateway::client> open_gateway(boost::asio::io_context& io, const config& cfg);

}  // namespace billingd::daemon
