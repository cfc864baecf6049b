#include "customers.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace portone_sim {
namespace {

[[noreturn]] void bad(std::string_view text, std::string_view why) {
    throw std::invalid_argument("invalid behaviour '" + std::string(text) +
                                "': " + std::string(why));
}

std::int64_t parse_count(std::string_view text, std::string_view digits) {
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() || n < 0)
        bad(text, "expected a non-negative integer");
    return n;
}

std::pair<std::string, std::string> split_assignment(std::string_view arg) {
    const auto eq = arg.find('=');
    if (eq == std::string_view::npos || eq == 0)
        throw std::invalid_argument("expected NAME=BEHAVIOUR, got '" + std::string(arg) + "'");
    return {std::string(arg.substr(0, eq)), std::string(arg.substr(eq + 1))};
}

}  // namespace

behaviour parse_behaviour(std::string_view text) {
    behaviour b;
    b.text = std::string(text);
    const auto colon = text.find(':');
    const auto head = text.substr(0, colon);
    const auto rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
    const bool has_rest = colon != std::string_view::npos;

    if (head == "pay" && !has_rest) {
        b.type = behaviour::kind::pay;
    } else if (head == "unregistered" && !has_rest) {
        b.type = behaviour::kind::unregistered;
    } else if (head == "decline") {
        b.type = behaviour::kind::decline;
        b.reason = std::string(rest);
    } else if (head == "decline_first" && has_rest) {
        b.type = behaviour::kind::decline_first;
        const auto colon2 = rest.find(':');
        b.n = parse_count(text, rest.substr(0, colon2));
        if (colon2 != std::string_view::npos) b.reason = std::string(rest.substr(colon2 + 1));
    } else if (head == "cap" && has_rest) {
        b.type = behaviour::kind::cap;
        b.n = parse_count(text, rest);
    } else {
        bad(text,
            "expected pay, decline[:REASON], decline_first:N[:REASON], unregistered or cap:N");
    }
    if (b.reason.empty()) b.reason = std::string(default_decline_reason);
    return b;
}

void customer_book::set_exact(std::string customer_uid, behaviour b) {
    reset_matching(customer_uid, true);
    exact_.insert_or_assign(std::move(customer_uid), std::move(b));
}

void customer_book::set_prefix(std::string prefix, behaviour b) {
    reset_matching(prefix, false);
    prefixes_.insert_or_assign(std::move(prefix), std::move(b));
}

void customer_book::reset_matching(std::string_view prefix, bool exact) {
    for (auto& [uid, st] : states_) {
        if (exact ? uid == prefix : uid.starts_with(prefix)) {
            st.charge_requests = 0;
            st.deleted = false;
        }
    }
}

void customer_book::load_rules(const nlohmann::json& rules) {
    if (!rules.is_object()) throw std::invalid_argument("customer rules must be a JSON object");
    for (const char* section : {"customers", "prefixes"}) {
        if (!rules.contains(section)) continue;
        const auto& map = rules.at(section);
        if (!map.is_object())
            throw std::invalid_argument(std::string("'") + section + "' must be an object");
        for (const auto& [name, value] : map.items()) {
            if (!value.is_string())
                throw std::invalid_argument("behaviour for '" + name + "' must be a string");
            auto b = parse_behaviour(value.get<std::string>());
            if (section[0] == 'c')
                set_exact(name, std::move(b));
            else
                set_prefix(name, std::move(b));
        }
    }
}

void customer_book::add_exact_arg(std::string_view arg) {
    auto [name, text] = split_assignment(arg);
    set_exact(std::move(name), parse_behaviour(text));
}

void customer_book::add_prefix_arg(std::string_view arg) {
    auto [name, text] = split_assignment(arg);
    set_prefix(std::move(name), parse_behaviour(text));
}

behaviour customer_book::lookup(const std::string& customer_uid) const {
    if (auto st = states_.find(customer_uid); st != states_.end() && st->second.deleted)
        return behaviour{};
    if (auto it = exact_.find(customer_uid); it != exact_.end()) return it->second;
    const behaviour* best = nullptr;
    std::size_t best_len = 0;
    for (const auto& [prefix, b] : prefixes_) {
        if (customer_uid.starts_with(prefix) && (best == nullptr || prefix.size() > best_len)) {
            best = &b;
            best_len = prefix.size();
        }
    }
    return best != nullptr ? *best : behaviour{};
}

bool customer_book::registered(const std::string& customer_uid) const {
    return lookup(customer_uid).type != behaviour::kind::unregistered;
}

customer_state& customer_book::state(const std::string& customer_uid, std::int64_t now_ms) {
    auto [it, inserted] = states_.try_emplace(customer_uid);
    if (inserted) it->second.inserted_ms = it->second.updated_ms = now_ms;
    return it->second;
}

bool customer_book::remove(const std::string& customer_uid, std::int64_t now_ms) {
    if (!registered(customer_uid)) return false;
    auto& st = state(customer_uid, now_ms);
    st.deleted = true;
    st.updated_ms = now_ms;
    return true;
}

}  // namespace portone_sim
