// `billingctl customer verify`: asks PortOne whether it holds a billing key for a customer_uid.
#include <fmt/format.h>

#include "commands.hpp"
#include "output.hpp"
#include "portone.hpp"

namespace billingd::ctl {
namespace {

struct verify_options {
    std::string customer_uid;
};

void run_verify(context& ctx, const verify_options& o) {
    // It goes into PortOne's URL path: refused before anything is sent.
    check_text("CUSTOMER_UID", o.customer_uid, 1, 80, true);
    const auto cfg = ctx.portone_config();
    const auto r = ask_customer(cfg.portone, o.customer_uid);
    const auto& j = r.journal;
    if (r.exists) {
        if (ctx.json()) {
            print_json({{"customer_uid", o.customer_uid},
                        {"exists", true},
                        {"card_name", r.card_name},
                        {"card_number", r.card_number},
                        {"pg_provider", r.pg_provider}});
        } else if (csv_output_enabled()) {
            print_csv_row({"customer_uid", "exists", "card_name", "card_number", "pg_provider"});
            print_csv_row({o.customer_uid, "true", r.card_name, r.card_number, r.pg_provider});
        } else {
            fmt::print("customer_uid  {}\ncard          {}\nnumber        {}\npg            {}\n",
                       o.customer_uid, r.card_name.empty() ? "-" : r.card_name,
                       r.card_number.empty() ? "-" : r.card_number,
                       r.pg_provider.empty() ? "-" : r.pg_provider);
        }
        return;
    }
    switch (j.result) {
        case gateway::outcome::not_found:
        case gateway::outcome::invalid_billing_key:
            if (ctx.json())
                print_json({{"customer_uid", o.customer_uid},
                            {"exists", false},
                            {"card_name", nullptr},
                            {"card_number", nullptr},
                            {"pg_provider", nullptr}});
            if (csv_output_enabled()) {
                print_csv_row(
                    {"customer_uid", "exists", "card_name", "card_number", "pg_provider"});
                print_csv_row({o.customer_uid, "false", "", "", ""});
            }
            throw failure(exit_code::data,
                          fmt::format("PortOne has no billing key for customer_uid '{}' ({})",
                                      o.customer_uid, j.message.empty() ? "not found" : j.message));
        case gateway::outcome::config_error:
            throw failure(exit_code::config,
                          fmt::format("PortOne refused billingctl's credentials or request "
                                      "(HTTP {}): {}",
                                      j.http_status, j.message));
        default:
            throw failure(
                exit_code::unavailable,
                fmt::format("PortOne cannot be reached or gave no clear answer (HTTP {}, {}): {}",
                            j.http_status, gateway::to_string(j.result), j.message));
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
