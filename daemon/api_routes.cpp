#include "daemon/api_routes.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "calendar/calendar.hpp"
#include "daemon/api_tokens.hpp"
#include "domain/merchant_uid.hpp"
#include "operations/changes.hpp"
#include "operations/customers.hpp"
#include "operations/idempotency.hpp"
#include "operations/json.hpp"
#include "operations/queries.hpp"
#include "operations/refunds.hpp"
#include "operations/subscriptions.hpp"

namespace billingd::daemon {

using nlohmann::json;
using operations::error;
using operations::error_kind;
using operations::naming;

namespace {

constexpr std::int64_t max_id = std::int64_t{1} << 53;  // exact in every JSON reader
constexpr std::int64_t default_limit = 100;
constexpr std::int64_t max_limit = 1000;
constexpr int max_json_depth = 16;

std::string dump(const json& j) {
    // A row written by hand may hold invalid UTF-8: replaced, never thrown at the client.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

api_response answer(int status, const json& body) {
    api_response r;
    r.status = status;
    r.body = dump(body);
    return r;
}

std::string title_of(std::string_view type) {
    std::string t{type};
    std::replace(t.begin(), t.end(), '-', ' ');
    if (!t.empty() && t[0] >= 'a' && t[0] <= 'z') t[0] = static_cast<char>(t[0] - 'a' + 'A');
    return t;
}

int status_of(error_kind kind) {
    switch (kind) {
        case error_kind::not_found:
            return 404;
        case error_kind::invalid:
            return 422;
        case error_kind::conflict:
            return 409;
        case error_kind::unavailable:
            return 503;
    }
    return 500;
}

// A refusal before any operation runs: the request itself is wrong.
[[noreturn]] void refuse(int status, std::string type, const std::string& detail) {
    throw api_response{api_routes::problem(status, type, detail)};
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decoding of a path segment or query component ('+' is a space in a query).
std::string decoded(std::string_view s, bool query) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%') {
            if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
                refuse(400, "malformed-request",
                       "a '%' in the request target is not followed by two hex digits");
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += query && s[i] == '+' ? ' ' : s[i];
        }
    }
    return out;
}

std::optional<std::int64_t> parse_id(std::string_view text) {
    if (text.empty() || text.size() > 16 || text[0] == '0') return std::nullopt;
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
    if (ec != std::errc{} || end != text.data() + text.size() || v < 1 || v > max_id)
        return std::nullopt;
    return v;
}

struct target {
    std::vector<std::string> path;  // decoded segments after /v1
    std::map<std::string, std::string> query;
};

target parse_target(std::string_view t) {
    const auto q = t.find('?');
    const std::string_view path = t.substr(0, q);
    if (!path.starts_with("/v1/") && path != "/v1")
        refuse(404, "no-such-endpoint", "the API lives under /v1/ (see api/openapi.yaml)");
    target out;
    std::string_view rest = path.substr(3);
    while (!rest.empty()) {
        rest.remove_prefix(1);  // '/'
        const auto slash = rest.find('/');
        out.path.push_back(decoded(rest.substr(0, slash), false));
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    }
    if (!out.path.empty() && out.path.back().empty()) out.path.pop_back();  // trailing slash
    if (q != std::string_view::npos) {
        std::string_view query = t.substr(q + 1);
        while (!query.empty()) {
            const auto amp = query.find('&');
            const auto pair = query.substr(0, amp);
            query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
            if (pair.empty()) continue;
            const auto eq = pair.find('=');
            out.query[decoded(pair.substr(0, eq), true)] =
                eq == std::string_view::npos ? std::string{} : decoded(pair.substr(eq + 1), true);
        }
    }
    return out;
}

void only_parameters(const target& t, std::initializer_list<std::string_view> known) {
    for (const auto& [name, value] : t.query)
        if (std::find(known.begin(), known.end(), name) == known.end())
            refuse(400, "unknown-parameter",
                   fmt::format("unknown query parameter {}", operations::shown(name)));
}

std::int64_t integer_parameter(const target& t, const std::string& name, std::int64_t fallback,
                               std::int64_t min, std::int64_t max) {
    const auto it = t.query.find(name);
    if (it == t.query.end()) return fallback;
    const auto& text = it->second;
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
    const bool digits = !text.empty() && std::all_of(text.begin(), text.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
        throw error(error_kind::invalid, "invalid-parameter",
                    fmt::format("{}: must be a whole number between {} and {}, got {}", name, min,
                                max, operations::shown(text)),
                    name);
    return v;
}

[[noreturn]] void refuse_method(const std::string& allowed) {
    auto p = api_routes::problem(405, "method-not-allowed",
                                 fmt::format("this resource allows {} only", allowed));
    p.headers.emplace_back("Allow", allowed);
    throw p;
}

operations::page page_of(const target& t) {
    return {integer_parameter(t, "limit", default_limit, 1, max_limit),
            integer_parameter(t, "after", 0, 0, max_id)};
}

json next_after(const std::optional<std::int64_t>& cut) {
    return cut ? json(*cut) : json(nullptr);
}

// A JSON request body: an object of known members with the right types.
class body {
  public:
    body(const api_request& r, std::initializer_list<std::string_view> known, bool required) {
        const bool empty = r.body.find_first_not_of(" \t\r\n") == std::string::npos;
        if (empty) {
            if (required)
                refuse(400, "malformed-json", "this request needs a JSON object as its body");
            object_ = json::object();
            return;
        }
        const auto semicolon = r.content_type.find(';');
        std::string type = r.content_type.substr(0, semicolon);
        type.erase(type.find_last_not_of(" \t") + 1);
        std::transform(type.begin(), type.end(), type.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (type != "application/json")
            refuse(415, "unsupported-media-type",
                   "the body must be JSON, sent as Content-Type: application/json");
        bool too_deep = false;
        object_ = json::parse(
            r.body,
            [&too_deep](int depth, json::parse_event_t, json&) {
                if (depth > max_json_depth) too_deep = true;
                return depth <= max_json_depth;
            },
            false);
        if (object_.is_discarded() || too_deep)
            refuse(400, "malformed-json",
                   too_deep ? "the JSON body is nested too deeply"
                            : "the body is not valid JSON (RFC 8259, UTF-8)");
        if (!object_.is_object()) refuse(400, "malformed-json", "the body must be a JSON object");
        for (const auto& [key, value] : object_.items())
            if (std::find(known.begin(), known.end(), key) == known.end())
                throw error(error_kind::invalid, "unknown-field",
                            fmt::format("{}: not a member of this request (known: {})",
                                        operations::shown(key), fmt::join(known, ", ")),
                            key);
    }

    const json& object() const { return object_; }

    std::optional<std::string> text(const char* field) const {
        const auto* v = member(field);
        if (!v) return std::nullopt;
        if (!v->is_string()) wrong_type(field, "a string");
        return v->get<std::string>();
    }
    std::optional<std::int64_t> integer(const char* field) const {
        const auto* v = member(field);
        if (!v) return std::nullopt;
        if (v->is_number_unsigned()) {
            const auto u = v->get<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(INT64_MAX))
                operations::refuse_field(naming::json, field, "number-out-of-range",
                                         "is larger than any amount or count billingd takes");
            return static_cast<std::int64_t>(u);
        }
        if (!v->is_number_integer()) wrong_type(field, "a whole number (no fraction, no quotes)");
        return v->get<std::int64_t>();
    }
    std::optional<bool> boolean(const char* field) const {
        const auto* v = member(field);
        if (!v) return std::nullopt;
        if (!v->is_boolean()) wrong_type(field, "true or false");
        return v->get<bool>();
    }
    std::string required_text(const char* field) const {
        auto v = text(field);
        if (!v) missing(field);
        return *v;
    }
    std::int64_t required_integer(const char* field) const {
        auto v = integer(field);
        if (!v) missing(field);
        return *v;
    }

  private:
    // An absent member and null are the same: "not given".
    const json* member(const char* field) const {
        const auto it = object_.find(field);
        return it == object_.end() || it->is_null() ? nullptr : &*it;
    }
    [[noreturn]] static void wrong_type(const char* field, const char* what) {
        operations::refuse_field(naming::json, field, "wrong-type",
                                 fmt::format("must be {}", what));
    }
    [[noreturn]] static void missing(const char* field) {
        operations::refuse_field(naming::json, field, "missing-field", "is required");
    }
    json object_;
};

std::string sha256_hex(std::string_view text) {
    unsigned char digest[32];
    unsigned int n = 0;
    EVP_Digest(text.data(), text.size(), digest, &n, EVP_sha256(), nullptr);
    std::string out;
    for (unsigned int i = 0; i < n; ++i) out += fmt::format("{:02x}", digest[i]);
    return out;
}

std::string bearer_token(std::string_view authorization) {
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size()) return {};
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return {};
    auto token = authorization.substr(scheme.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    return std::string{token};
}

}  // namespace

struct api_routes::impl {
    impl(storage::store& s, const config& c, const scheduler::clock& k)
        : store(s), cfg(c), clock(k), keys(s.db()) {}

    storage::store& store;
    const config& cfg;
    const scheduler::clock& clock;
    operations::idempotency_keys keys;

    std::int64_t now() const { return clock.now().time_since_epoch().count(); }

    api_plan route(const api_request& r);
    api_plan subscriptions(const api_request& r, const target& t, const operations::caller& who,
                           bool can_write);
    api_plan create_subscription(const api_request& r, const operations::caller& who);
    api_response subscription(std::int64_t id);
    api_plan update_subscription(const api_request& r, const operations::caller& who,
                                 std::int64_t id);
    api_plan record_consent(const api_request& r, const operations::caller& who, std::int64_t id);
    api_plan refund(const api_request& r, const operations::caller& who, std::int64_t charge_id);
    // The Idempotency-Key of a create, checked, and the fingerprint of the request.
    std::optional<std::string> idempotency_key(const api_request& r, const body& b,
                                               std::string& fingerprint);

    // An Idempotency-Key's earlier answer for this request, or a 409 for another request.
    std::optional<api_response> replay(const std::string& key, const std::string& fingerprint);
};

api_routes::api_routes(storage::store& store, const config& cfg, const scheduler::clock& clock)
    : impl_(std::make_unique<impl>(store, cfg, clock)) {}

api_routes::~api_routes() = default;

api_response api_routes::problem(int status, const std::string& type, const std::string& detail,
                                 const std::string& field) {
    json out = {{"type", "urn:billingd:problem:" + type},
                {"title", title_of(type)},
                {"status", status},
                {"detail", detail}};
    if (!field.empty()) out["field"] = field;
    api_response r;
    r.status = status;
    r.content_type = "application/problem+json";
    r.body = dump(out);
    if (status == 503) r.headers.emplace_back("Retry-After", "1");
    return r;
}

api_response api_routes::problem(const operations::error& e) {
    return problem(status_of(e.kind()), e.type(), e.what(), e.field());
}

api_plan api_routes::route(const api_request& request) {
    try {
        return impl_->route(request);
    } catch (const api_response& refused) {
        return refused;
    } catch (const error& e) {
        return problem(e);
    }
}

api_plan api_routes::impl::route(const api_request& r) {
    const auto token = bearer_token(r.authorization);
    const api_token* holder = token.empty() ? nullptr : authenticate(cfg.api.tokens, token);
    if (!holder) {
        auto p = problem(401, "unauthorized",
                         token.empty() ? "send an API token: Authorization: Bearer <token>"
                                       : "the bearer token is not one of billingd's API tokens");
        p.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"billingd\"");
        return p;
    }
    const bool read = r.method == "GET";
    const target t = parse_target(r.target);
    const operations::caller who{holder->name, now(), "API client"};
    if (!t.path.empty() && t.path[0] == "subscriptions")
        return subscriptions(r, t, who, holder->can_write);
    if (t.path.size() == 2 && t.path[0] == "customers") {
        if (!read) refuse_method("GET");
        only_parameters(t, {});
        operations::check_customer_uid(naming::json, t.path[1]);
        return api_portone_call{t.path[1]};
    }
    if ((t.path.size() == 2 || t.path.size() == 3) && t.path[0] == "charges") {
        const auto id = parse_id(t.path[1]);
        if (!id)
            throw error(error_kind::not_found, "charge-not-found",
                        fmt::format("no charge with id {}", operations::shown(t.path[1])));
        if (t.path.size() == 3 && t.path[2] == "refunds") {
            if (r.method != "POST") refuse_method("POST");
            if (!holder->can_write)
                refuse(403, "read-only-token", "this API token may only read (scope read)");
            only_parameters(t, {});
            return refund(r, who, *id);
        }
        if (t.path.size() == 3) refuse(404, "no-such-endpoint", "no such charge resource");
        if (!read) refuse_method("GET");
        only_parameters(t, {});
        const auto c = operations::charge(store, *id);
        json out = {{"charge", operations::to_json(c)},
                    {"attempts", operations::to_json(store.attempts_of_charge(c.id))}};
        out["refunds"] = operations::to_json(operations::refunds_of_charge(store, c.id));
        return answer(200, out);
    }
    refuse(404, "no-such-endpoint",
           fmt::format("{} {} is not an endpoint of this API (see api/openapi.yaml)", r.method,
                       operations::shown(r.target.substr(0, r.target.find('?')))));
}

api_plan api_routes::impl::subscriptions(const api_request& r, const target& t,
                                         const operations::caller& who, bool can_write) {
    const bool read = r.method == "GET";
    const auto allow = [&r](const std::string& methods) {
        std::string_view rest = methods;
        while (!rest.empty()) {
            const auto comma = rest.find(", ");
            if (rest.substr(0, comma) == r.method) return;
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 2);
        }
        refuse_method(methods);
    };
    const auto writer = [can_write] {
        if (!can_write) refuse(403, "read-only-token", "this API token may only read (scope read)");
    };
    if (t.path.size() == 1) {
        allow("GET, POST");
        if (!read) {
            writer();
            only_parameters(t, {});
            return create_subscription(r, who);
        }
        only_parameters(t, {"customer_uid", "status", "limit", "after"});
        operations::subscription_filter filter;
        if (auto it = t.query.find("status"); it != t.query.end()) filter.status = it->second;
        if (auto it = t.query.find("customer_uid"); it != t.query.end())
            filter.customer_uid = it->second;
        const auto page = operations::list_subscriptions(store, filter, page_of(t), naming::json);
        return answer(200, {{"subscriptions", operations::to_json(page.rows)},
                            {"next_after", next_after(page.next_after)}});
    }
    const auto id = parse_id(t.path[1]);
    if (!id)
        throw error(error_kind::not_found, "subscription-not-found",
                    fmt::format("no subscription with id {}", operations::shown(t.path[1])));
    if (t.path.size() == 2) {
        allow("GET, PATCH");
        only_parameters(t, {});
        if (r.method == "PATCH") {
            writer();
            return update_subscription(r, who, *id);
        }
        return subscription(*id);
    }
    if (t.path.size() != 3) refuse(404, "no-such-endpoint", "no such subscription resource");
    const auto& what = t.path[2];
    if (what == "events") {
        allow("GET");
        only_parameters(t, {"limit", "after"});
        operations::subscription(store, *id);  // 404 for an unknown one
        const auto page = operations::merchant_events(store, *id, page_of(t));
        return answer(200, {{"events", page.events}, {"next_after", next_after(page.next_after)}});
    }
    if (what == "consent") {
        allow("POST");
        writer();
        only_parameters(t, {});
        return record_consent(r, who, *id);
    }
    if (what != "pause" && what != "resume" && what != "cancel")
        refuse(404, "no-such-endpoint", "no such subscription resource");
    allow("POST");
    writer();
    only_parameters(t, {});
    const body b(r,
                 what == "cancel" ? std::initializer_list<std::string_view>{"at_period_end"}
                                  : std::initializer_list<std::string_view>{},
                 false);
    const bool at_period_end = b.boolean("at_period_end").value_or(false);
    auto& s = store;
    const std::int64_t sid = *id;
    api_change change;
    change.wakes_engine = what == "resume";
    change.run = [&s, who, sid, what, at_period_end] {
        const auto r = what == "pause"    ? operations::pause(s, who, sid)
                       : what == "resume" ? operations::resume(s, who, sid)
                                          : operations::cancel(s, who, sid, at_period_end);
        return answer(200,
                      {{"subscription", operations::to_json(r.subscription)}, {"notes", r.notes}});
    };
    return change;
}

api_response api_routes::impl::subscription(std::int64_t id) {
    const auto s = operations::subscription(store, id);
    json out = {{"subscription", operations::to_json(s)},
                {"charges", operations::to_json(store.charges_of_subscription(id))}};
    out["price_schedule"] = operations::to_json(operations::price_schedule(store, id));
    return answer(200, out);
}

std::optional<api_response> api_routes::impl::replay(const std::string& key,
                                                     const std::string& fingerprint) {
    const auto prior = keys.find(key);
    if (!prior) return std::nullopt;
    if (prior->fingerprint != fingerprint)
        return problem(409, "idempotency-key-reused",
                       "this Idempotency-Key was used for a request with another body; use a new "
                       "key for a new request");
    api_response r;
    r.status = prior->status;
    r.body = prior->body;
    r.headers.emplace_back("Idempotent-Replayed", "true");
    return r;
}

std::optional<std::string> api_routes::impl::idempotency_key(const api_request& r, const body& b,
                                                             std::string& fingerprint) {
    if (!r.idempotency_key) return std::nullopt;
    const auto& key = *r.idempotency_key;
    if (key.empty() || key.size() > operations::max_idempotency_key ||
        !std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7F; }))
        refuse(400, "invalid-idempotency-key",
               fmt::format("the Idempotency-Key must be 1 to {} printable ASCII characters "
                           "without spaces (a UUID is a good key)",
                           operations::max_idempotency_key));
    // The request as parsed: member order and white space do not make another request.
    fingerprint = sha256_hex(r.method + " " + r.target.substr(0, r.target.find('?')) + "\n" +
                             dump(b.object()));
    return key;
}

api_plan api_routes::impl::create_subscription(const api_request& r,
                                               const operations::caller& who) {
    const body b(r,
                 {"customer_uid", "amount", "order_name", "currency", "interval_unit",
                  "interval_count", "anchor_date", "charge_time", "time_zone", "trial_days",
                  "max_periods", "backdate", "buyer_name", "buyer_email", "buyer_tel"},
                 true);
    std::string fingerprint;
    const auto key = idempotency_key(r, b, fingerprint);
    if (key)
        if (auto earlier = replay(*key, fingerprint)) return *earlier;
    operations::new_subscription in;
    in.customer_uid = b.required_text("customer_uid");
    in.amount = b.required_integer("amount");
    in.order_name = b.required_text("order_name");
    in.currency = b.text("currency").value_or("KRW");
    in.interval_unit = b.text("interval_unit").value_or("month");
    in.interval_count = b.integer("interval_count").value_or(1);
    in.anchor_date = b.text("anchor_date");
    in.charge_time = b.text("charge_time");
    in.time_zone = b.text("time_zone");
    in.trial_days = b.integer("trial_days");
    in.max_periods = b.integer("max_periods");
    in.backdate = b.boolean("backdate").value_or(false);
    in.buyer_name = b.text("buyer_name");
    in.buyer_email = b.text("buyer_email");
    in.buyer_tel = b.text("buyer_tel");
    operations::subscription_defaults defaults;
    defaults.time_zone = cfg.time_zone;
    defaults.charge_time = calendar::to_string(cfg.charge_time);
    defaults.max_amount_per_charge = cfg.engine.max_amount_per_charge;
    auto valid = operations::validate(in, defaults, who.now, naming::json);

    api_change change;
    change.wakes_engine = true;
    change.run = [this, who, valid = std::move(valid), key, fingerprint]() -> api_response {
        // Again under the write lock: a concurrent request with the key may have committed.
        if (key)
            if (auto earlier = replay(*key, fingerprint)) return *earlier;
        operations::change_scope scope(store);  // the row and its key: both or neither
        const auto s = operations::create(store, who, valid);
        auto created = answer(201, {{"subscription", operations::to_json(s)}});
        if (key)
            keys.remember(*key, {fingerprint, created.status, created.body}, who.actor, s.id,
                          who.now);
        scope.commit();
        created.headers.emplace_back("Location", fmt::format("/v1/subscriptions/{}", s.id));
        return created;
    };
    return change;
}

api_plan api_routes::impl::update_subscription(const api_request& r, const operations::caller& who,
                                               std::int64_t id) {
    const body b(r,
                 {"amount", "order_name", "charge_time", "interval_unit", "interval_count",
                  "customer_uid", "from_period"},
                 true);
    operations::subscription_update change;
    change.amount = b.integer("amount");
    change.order_name = b.text("order_name");
    change.charge_time = b.text("charge_time");
    change.interval_unit = b.text("interval_unit");
    change.interval_count = b.integer("interval_count");
    change.customer_uid = b.text("customer_uid");
    change.from_period = b.integer("from_period");
    change.amount_limit = operations::amount_limit(cfg.engine.max_amount_per_charge);
    api_change c;
    c.wakes_engine = true;  // a new card or charge time may make a period due sooner
    c.run = [this, who, id, change]() {
        const auto u = operations::update_subscription(store, who, id, change);
        return answer(
            200, {{"subscription", operations::to_json(u.subscription)},
                  {"from_period", u.from_period},
                  {"price_schedule", operations::to_json(operations::price_schedule(store, id))}});
    };
    return c;
}

api_plan api_routes::impl::record_consent(const api_request& r, const operations::caller& who,
                                          std::int64_t id) {
    const body b(r, {"period"}, false);
    const auto period = b.integer("period");
    api_change c;
    c.wakes_engine = true;  // the held period may be charged now
    c.run = [this, who, id, period]() {
        const auto event_id = operations::record_consent(store, who, id, period);
        return answer(200,
                      {{"subscription", operations::to_json(operations::subscription(store, id))},
                       {"event_id", event_id}});
    };
    return c;
}

api_plan api_routes::impl::refund(const api_request& r, const operations::caller& who,
                                  std::int64_t charge_id) {
    const body b(r, {"amount", "reason"}, true);
    std::string fingerprint;
    const auto key = idempotency_key(r, b, fingerprint);
    if (key)
        if (auto earlier = replay(*key, fingerprint)) return *earlier;
    operations::refund_request request;
    request.amount = b.integer("amount");
    request.reason = b.required_text("reason");
    api_change c;
    c.wakes_engine = true;  // billingd sends the refund
    c.run = [this, who, charge_id, request, key, fingerprint]() -> api_response {
        if (key)
            if (auto earlier = replay(*key, fingerprint)) return *earlier;
        // The refund and its key commit together: a retry after any crash is replayed.
        operations::change_scope scope(store);
        const auto refund = operations::request_refund(store, who, charge_id, request);
        auto accepted = answer(202, {{"refund", operations::to_json(refund)}});
        if (key)
            keys.remember(*key, {fingerprint, accepted.status, accepted.body}, who.actor,
                          refund.subscription_id, who.now);
        scope.commit();
        return accepted;
    };
    return c;
}

api_response api_routes::customer_answer(const std::string& customer_uid,
                                         const gateway::customer_result& r) {
    if (!r.exists && r.journal.result == gateway::outcome::config_error)
        return problem(503, "portone-configuration",
                       fmt::format("PortOne refused billingd's credentials or request (HTTP {}); "
                                   "the operator must fix billingd's configuration",
                                   r.journal.http_status));
    try {
        const auto k = operations::billing_key_of(customer_uid, r);
        return answer(200, {{"customer_uid", k.customer_uid},
                            {"exists", true},
                            {"card_name", k.card_name},
                            {"card_number", k.card_number},
                            {"pg_provider", k.pg_provider}});
    } catch (const error& e) {
        return problem(e);
    }
}

int api_routes::forget_old_keys() {
    const auto before =
        impl_->now() -
        std::chrono::duration_cast<std::chrono::seconds>(impl_->cfg.api.idempotency_ttl).count();
    return impl_->keys.forget_before(before, 500);
}

}  // namespace billingd::daemon
