// `billingctl customer verify`: asks PortOne whether it holds a billing key for a customer_uid.
#include <fmt/format.h>

#include "commands.hpp"
#include "operations/customers.hpp"
#include "output.hpp"
#include "portone.hpp"

namespace billingd::ctl {
namespace {

struct verify_options {
    std::string customer_uid;
};

void print_key(context& ctx, const operations::billing_key& k, bool exists) {
    const auto or_null = [exists](const std::string& v) {
        return exists ? nlohmann::json(v) : nlohmann::json(nullptr);
    };
    if (ctx.json()) {
        print_json({{"customer_uid", k.customer_uid},
                    {"exists", exists},
                    {"card_name", or_null(k.card_name)},
                    {"card_number", or_null(k.card_number)},
                    {"pg_provider", or_null(k.pg_provider)}});
    } else if (csv_output_enabled()) {
        print_csv_row({"customer_uid", "exists", "card_name", "card_number", "pg_provider"});
        print_csv_row(
            {k.customer_uid, exists ? "true" : "false", k.card_name, k.card_number, k.pg_provider});
    } else if (exists) {
        fmt::print("customer_uid  {}\ncard          {}\nnumber        {}\npg            {}\n",
                   k.customer_uid, k.card_name.empty() ? "-" : k.card_name,
                   k.card_number.empty() ? "-" : k.card_number,
                   k.pg_provider.empty() ? "-" : k.pg_provider);
    }
}

void run_verify(context& ctx, const verify_options& o) {
    // It goes into PortOne's URL path: refused before anything is sent.
    operations::check_customer_uid(operations::naming::options, o.customer_uid);
    const auto cfg = ctx.portone_config();
    const auto r = ask_customer(cfg.portone, o.customer_uid);
    const auto& j = r.journal;
    if (!r.exists && j.result == gateway::outcome::config_error)
        throw failure(exit_code::config,
                      fmt::format("PortOne refused billingctl's credentials or request "
                                  "(HTTP {}): {}",
                                  j.http_status, j.message));
    try {
        print_key(ctx, operations::billing_key_of(o.customer_uid, r), true);
    } catch (const operations::error& e) {
        // Scripts get the row with exists=false too; the exit code says it (65).
        if (e.type() == "billing-key-not-found")
            print_key(ctx, {o.customer_uid, "", "", ""}, false);
        throw;
    }
}

}  // namespace

void add_customer_commands(CLI::App& app, action& selected) {
    auto* group = app.add_subcommand("customer", "Check customers (billing keys) at PortOne");
    group->require_subcommand(1);
    auto o = std::make_shared<verify_options>();
    auto* verify = group->add_subcommand(
        "verify",
        "Ask PortOne (GET /subscribe/customers/{customer_uid}) whether it holds a billing key "
        "for CUSTOMER_UID, before adding a subscription or after a charge was parked for an "
        "unregistered customer. Prints the card name, the masked card number and the PG. "
        "Needs the configuration with PortOne credentials ($CREDENTIALS_DIRECTORY or "
        "BILLINGD_PORTONE_IMP_KEY/SECRET). Exit 0: registered; 65: PortOne does not know it; "
        "69: PortOne cannot be reached; 78: configuration or credentials wrong.");
    verify->add_option("CUSTOMER_UID", o->customer_uid, "the customer_uid to look up")->required();
    verify->footer(
        "Example:\n  billingctl --config /etc/billingd/billingd.toml customer verify "
        "cust_42");
    on_parsed<verify_options>(verify, selected, db_access::read, o, run_verify);
}

}  // namespace billingd::ctl
