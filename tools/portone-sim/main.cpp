// portone-sim: a PortOne V1 simulator for billingd's tests, demo and benchmarks.
// Exit codes: 0 after SIGTERM/SIGINT, 64 bad arguments, 1 cannot start.
#include <CLI/CLI.hpp>
#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "server.hpp"
#include "simulator.hpp"

int main(int argc, char** argv) {
    using namespace portone_sim;
    std::signal(SIGPIPE, SIG_IGN);

    CLI::App app{"portone-sim: PortOne V1 simulator (127.0.0.1 only)"};
    sim_config config;
    server_options server;
    int port = 0;
    std::int64_t token_ttl = 1800;
    std::int64_t extend_window = -1, extend_by = -1, hang_seconds = 300, idle_timeout = 60;
    std::string customers_file, ledger_file, record_at_arg = "arrival", reuse_arg = "allow";
    std::string refusal_status_arg = "200", partial_status_arg = "paid";
    std::vector<std::string> customer_args, prefix_args, fault_args;

    app.add_option("--port", port, "TCP port on 127.0.0.1 (0: pick a free one)")
        ->check(CLI::Range(0, 65535));
    app.add_option("--tls-cert", server.tls_cert, "PEM certificate: serve HTTPS")
        ->check(CLI::ExistingFile);
    app.add_option("--tls-key", server.tls_key, "PEM private key for --tls-cert")
        ->check(CLI::ExistingFile);
    app.add_option("--imp-key", config.imp_key, "accepted imp_key")->capture_default_str();
    app.add_option("--imp-secret", config.imp_secret, "accepted imp_secret");
    app.add_option("--token-ttl", token_ttl, "access token lifetime in seconds")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--token-extend-window", extend_window,
                   "asking this many seconds before expiry extends the token "
                   "(default 60, or ttl/30 with --token-ttl)");
    app.add_option("--token-extend", extend_by,
                   "seconds added by such an extension (default 300, or ttl/6 with --token-ttl)");
    app.add_option("--unknown-customer-code", config.unknown_customer_code,
                   "code for an unregistered customer_uid (PortOne used 1 and -1)")
        ->check(CLI::IsMember({1, -1}))
        ->capture_default_str();
    app.add_option("--customers", customers_file,
                   R"(JSON file {"customers":{UID:BEHAVIOUR},"prefixes":{PREFIX:BEHAVIOUR}})")
        ->check(CLI::ExistingFile);
    app.add_option("--customer", customer_args, "UID=BEHAVIOUR (repeatable)");
    app.add_option("--prefix", prefix_args, "PREFIX=BEHAVIOUR (repeatable)");
    app.add_option("--seed", config.seed, "seed of the fault streams")->capture_default_str();
    app.add_option("--fault", fault_args, "ENDPOINT:KIND:PROBABILITY[:COUNT] (repeatable)");
    app.add_option("--hang-seconds", hang_seconds, "how long hang_after holds a connection")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--idle-timeout", idle_timeout, "close keep-alive connections idle this long")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--max-body-bytes", server.max_body_bytes, "request body limit (413 above)")
        ->capture_default_str();
    app.add_option("--oversize-bytes", config.oversize_bytes, "body size of the oversize fault")
        ->capture_default_str();
    app.add_option("--record-at", record_at_arg,
                   "when a charge is recorded: on arrival (ready, then settled) or when the PG "
                   "answers (lookups during the latency get 404)")
        ->check(CLI::IsMember({"arrival", "answer"}))
        ->capture_default_str();
    app.add_option("--failed-uid-reuse", reuse_arg,
                   "whether a merchant_uid whose payments failed may be charged again")
        ->check(CLI::IsMember({"allow", "refuse"}))
        ->capture_default_str();
    app.add_option("--cancel-refusal-status", refusal_status_arg,
                   "HTTP status of a refused cancel (code != 0): 200 or 400 (PortOne's is "
                   "inferred)")
        ->check(CLI::IsMember({"200", "400"}))
        ->capture_default_str();
    app.add_option("--partial-cancel-status", partial_status_arg,
                   "status of a payment after a partial cancel: paid or cancelled (inferred)")
        ->check(CLI::IsMember({"paid", "cancelled"}))
        ->capture_default_str();
    app.add_option("--ledger-file", ledger_file, "write the ledger JSON here on SIGTERM/SIGINT");
    app.add_flag("--verbose,-v", server.verbose, "log one line per request to stderr");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : 64;
    }
    if (server.tls_cert.empty() != server.tls_key.empty()) {
        std::cerr << "portone-sim: --tls-cert and --tls-key go together\n";
        return 64;
    }

    config.tokens.ttl_s = token_ttl;
    const bool ttl_given = app.count("--token-ttl") > 0;
    config.tokens.extend_window_s =
        extend_window >= 0 ? extend_window : (ttl_given ? token_ttl / 30 : 60);
    config.tokens.extend_s = extend_by >= 0 ? extend_by : (ttl_given ? token_ttl / 6 : 300);
    config.modes.record_at = *parse_record_at(record_at_arg);
    config.modes.failed_uid_reuse = *parse_failed_uid_reuse(reuse_arg);
    config.modes.cancel_refusal_status = *parse_cancel_refusal_status(refusal_status_arg);
    config.modes.partial_cancel_status = *parse_partial_cancel_status(partial_status_arg);
    server.port = static_cast<std::uint16_t>(port);
    server.hang = std::chrono::seconds(hang_seconds);
    server.idle_timeout = std::chrono::seconds(idle_timeout);

    simulator sim(config);
    try {
        if (!customers_file.empty()) {
            std::ifstream in(customers_file);
            sim.customers().load_rules(nlohmann::json::parse(in));
        }
        for (const auto& a : customer_args) sim.customers().add_exact_arg(a);
        for (const auto& a : prefix_args) sim.customers().add_prefix_arg(a);
        std::vector<fault_spec> faults;
        for (const auto& f : fault_args) faults.push_back(parse_fault(f));
        sim.faults().replace(std::move(faults), config.seed);
    } catch (const std::exception& e) {
        std::cerr << "portone-sim: " << e.what() << '\n';
        return 64;
    }

    try {
        run_server(server, sim);
    } catch (const std::exception& e) {
        std::cerr << "portone-sim: cannot serve: " << e.what() << '\n';
        return 1;
    }

    if (!ledger_file.empty()) {
        std::ofstream out(ledger_file, std::ios::trunc);
        out << sim.payments().to_json().dump(2, ' ', false,
                                             nlohmann::json::error_handler_t::replace)
            << '\n';
        if (!out) {
            std::cerr << "portone-sim: cannot write " << ledger_file << '\n';
            return 1;
        }
    }
    return 0;
}
