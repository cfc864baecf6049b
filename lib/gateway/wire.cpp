#include "gateway/wire.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>

#include "domain/json_object.hpp"
#include "domain/text.hpp"

namespace billingd::gateway {

std::string_view to_string(outcome o) {
    switch (o) {
        case outcome::paid:
            return "paid";
        case outcome::declined:
            return "declined";
        case outcome::unknown:
            return "unknown";
        case outcome::transient:
            return "transient";
        case outcome::invalid_billing_key:
            return "invalid_billing_key";
        case outcome::refused:
            return "refused";
        case outcome::config_error:
            return "config_error";
        case outcome::not_found:
            return "not_found";
        case outcome::found:
            return "found";
    }
    return "unknown";
}

}  // namespace billingd::gateway

namespace billingd::gateway::wire {
namespace {

using json = nlohmann::json;

// PortOne passes PG messages through; these two are the only texts billingd looks for, and
// each is combined with the code and the shape of the answer (see classify_charge).
constexpr std::string_view unregistered_customer_text = "등록되지 않은 구매자";
constexpr std::string_view module_not_configured_text =
    "비인증결제모듈 사용정보를 찾을 수 없습니다";

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A body that is not UTF-8 (an EUC-KR message a PG passed through) would not parse, and the
// decline it reports would look like garbage. Its bytes outside ASCII are kept as the text
// "\\xHH" instead: the answer still parses, and an operator can read the bytes back. (A
// mixed body cannot be split reliably into "meant as UTF-8" and not, so all of them.)
std::string escape_non_ascii(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size() * 2);
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x80) {
            out.push_back(ch);
            continue;
        }
        out += "\\\\x";  // JSON text for a backslash, then x
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
    return out;
}

std::optional<json> parse_json(std::string_view text) {
    json j = domain::is_valid_utf8(text) ? json::parse(text, nullptr, /*allow_exceptions=*/false)
                                         : json::parse(escape_non_ascii(text), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

// Reads a charge answer's envelope, keeping only what it is classified by: the top-level
// code, message and response, and of the response object only the payment's fields. The whole
// text is checked against the JSON grammar (RFC 8259, as strictly as the JSON library: escapes,
// surrogate pairs, control characters, numbers, one value and nothing after it), but nothing
// else is built, and nesting is skipped without recursion. A payment object has some 50
// fields: building them all with the JSON library was the largest CPU cost of a charge.
// Kept strings with escapes and kept numbers other than plain integers are converted by the
// JSON library itself, so a kept value reads exactly as the library reads it. Duplicate keys:
// the last one wins, as in the library.
class envelope_scanner {
  public:
    explicit envelope_scanner(std::string_view text) : t_(text) {}

    std::optional<json> read() {
        if (t_.substr(0, 3) == "\xEF\xBB\xBF") i_ = 3;  // a byte order mark, as the library
        json document;
        skip_ws();
        if (!value(&document, place::document)) return std::nullopt;
        skip_ws();
        if (i_ != t_.size()) return std::nullopt;
        return document;
    }

  private:
    enum class place { document, envelope_member, response_object, payment_field };

    static bool payment_field_wanted(std::string_view k) {
        static constexpr std::string_view fields[] = {
            "imp_uid",     "merchant_uid", "customer_uid",  "status",     "currency",
            "fail_reason", "pg_provider",  "pg_tid",        "pay_method", "receipt_url",
            "name",        "amount",       "cancel_amount", "started_at", "paid_at",
            "failed_at",   "cancelled_at"};
        return std::find(std::begin(fields), std::end(fields), k) != std::end(fields);
    }

    bool at_end() const { return i_ >= t_.size(); }
    char peek() const { return t_[i_]; }
    void skip_ws() {
        while (i_ < t_.size() &&
               (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
            ++i_;
    }

    // A value at the current position; `target` (may be null: checked and skipped) receives
    // it. Only the document, its members and the response's fields are read; containers below
    // that are checked by skip_nested and kept as an empty value of their type.
    bool value(json* target, place where) {
        if (at_end()) return false;
        const char c = peek();
        if (c == '{' || c == '[') {
            const bool read_members =
                target && c == '{' && (where == place::document || where == place::response_object);
            if (!read_members) {
                if (target) *target = c == '{' ? json::object() : json::array();
                return skip_nested();
            }
            *target = json::object();
            return members(*target, where);
        }
        return scalar(target);
    }

    bool members(json& object, place where) {
        ++i_;  // '{'
        skip_ws();
        if (at_end()) return false;
        if (peek() == '}') {
            ++i_;
            return true;
        }
        for (;;) {
            std::string key;
            if (at_end() || peek() != '"' || !string(&key)) return false;
            skip_ws();
            if (at_end() || peek() != ':') return false;
            ++i_;
            skip_ws();
            json* target = nullptr;
            place child = place::payment_field;
            if (where == place::document) {
                if (key == "response") {
                    target = &object[key];
                    child = place::response_object;
                } else if (key == "code" || key == "message") {
                    target = &object[key];
                    child = place::envelope_member;
                }
            } else if (payment_field_wanted(key)) {
                target = &object[key];
            }
            if (!value(target, child)) return false;
            skip_ws();
            if (at_end()) return false;
            if (peek() == '}') {
                ++i_;
                return true;
            }
            if (peek() != ',') return false;
            ++i_;
            skip_ws();
        }
    }

    bool scalar(json* target) {
        const char c = peek();
        if (c == '"') {
            if (!target) return string(nullptr);
            std::string text;
            if (!string(&text)) return false;
            *target = std::move(text);
            return true;
        }
        if (c == 't') return literal("true", target, json(true));
        if (c == 'f') return literal("false", target, json(false));
        if (c == 'n') return literal("null", target, json(nullptr));
        return number(target);
    }

    bool literal(std::string_view word, json* target, json v) {
        if (t_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        if (target) *target = std::move(v);
        return true;
    }

    static int hex_value(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    // The code unit of a \uXXXX escape at t_[at] ('\\'), or -1.
    int escaped_unit(std::size_t at) const {
        if (at + 6 > t_.size() || t_[at] != '\\' || t_[at + 1] != 'u') return -1;
        int unit = 0;
        for (std::size_t k = at + 2; k < at + 6; ++k) {
            const int h = hex_value(t_[k]);
            if (h < 0) return -1;
            unit = unit * 16 + h;
        }
        return unit;
    }

    // A string token; `out` (may be null) receives its text.
    bool string(std::string* out) {
        const std::size_t start = i_;
        std::size_t k = i_ + 1;
        bool escaped = false;
        for (;;) {
            if (k >= t_.size()) return false;
            const auto c = static_cast<unsigned char>(t_[k]);
            if (c == '"') break;
            if (c < 0x20) return false;
            if (c != '\\') {
                ++k;
                continue;
            }
            escaped = true;
            if (k + 1 >= t_.size()) return false;
            const char e = t_[k + 1];
            if (e != 'u') {
                if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                    e != 'r' && e != 't')
                    return false;
                k += 2;
                continue;
            }
            const int unit = escaped_unit(k);
            if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) return false;
            if (unit >= 0xD800 && unit <= 0xDBFF) {  // needs its low surrogate
                const int low = escaped_unit(k + 6);
                if (low < 0xDC00 || low > 0xDFFF) return false;
                k += 12;
            } else {
                k += 6;
            }
        }
        i_ = k + 1;
        if (!out) return true;
        if (!escaped) {
            out->assign(t_.substr(start + 1, k - start - 1));
            return true;
        }
        const json decoded = json::parse(t_.substr(start, i_ - start), nullptr, false);
        if (!decoded.is_string()) return false;
        *out = decoded.get<std::string>();
        return true;
    }

    bool number(json* target) {
        const std::size_t start = i_;
        std::size_t k = i_;
        const auto digit = [&](std::size_t at) {
            return at < t_.size() && t_[at] >= '0' && t_[at] <= '9';
        };
        if (k < t_.size() && t_[k] == '-') ++k;
        if (!digit(k)) return false;
        if (t_[k] == '0')
            ++k;
        else
            while (digit(k)) ++k;
        bool plain = true;
        if (k < t_.size() && t_[k] == '.') {
            plain = false;
            ++k;
            if (!digit(k)) return false;
            while (digit(k)) ++k;
        }
        if (k < t_.size() && (t_[k] == 'e' || t_[k] == 'E')) {
            plain = false;
            ++k;
            if (k < t_.size() && (t_[k] == '+' || t_[k] == '-')) ++k;
            if (!digit(k)) return false;
            while (digit(k)) ++k;
        }
        i_ = k;
        const auto token = t_.substr(start, k - start);
        const bool fits_int64 = plain && token.size() <= 18;
        // The library reads any other number as a double and refuses the whole text when it
        // overflows (1e999), kept or not.
        if (!fits_int64 && !std::isfinite(std::strtod(std::string(token).c_str(), nullptr)))
            return false;
        if (!target) return true;
        if (fits_int64) {  // as the library types it: unsigned unless negative
            std::int64_t v = 0;
            for (char ch : token.substr(token[0] == '-' ? 1 : 0)) v = v * 10 + (ch - '0');
            if (token[0] == '-')
                *target = -v;
            else
                *target = static_cast<std::uint64_t>(v);
            return true;
        }
        *target = json::parse(token, nullptr, false);
        return !target->is_discarded();
    }

    // Checks a nested container at the current position ('{' or '[') without building it,
    // with an explicit stack: nesting costs a byte per level, not a stack frame.
    bool skip_nested() {
        std::string closers;
        for (;;) {
            // A value is expected here.
            if (at_end()) return false;
            const char c = peek();
            if (c == '{' || c == '[') {
                closers.push_back(c == '{' ? '}' : ']');
                ++i_;
                skip_ws();
                if (at_end()) return false;
                if (peek() == closers.back()) {
                    ++i_;
                    closers.pop_back();
                } else {
                    if (closers.back() == '}' && !key_and_colon()) return false;
                    continue;
                }
            } else if (!scalar(nullptr)) {
                return false;
            }
            // After a value: close containers, or go on after a comma.
            for (;;) {
                if (closers.empty()) return true;
                skip_ws();
                if (at_end()) return false;
                if (peek() == closers.back()) {
                    ++i_;
                    closers.pop_back();
                    continue;
                }
                if (peek() != ',') return false;
                ++i_;
                skip_ws();
                if (closers.back() == '}' && !key_and_colon()) return false;
                break;
            }
        }
    }

    bool key_and_colon() {
        if (at_end() || peek() != '"' || !string(nullptr)) return false;
        skip_ws();
        if (at_end() || peek() != ':') return false;
        ++i_;
        skip_ws();
        return true;
    }

    std::string_view t_;
    std::size_t i_ = 0;
};

std::optional<json> parse_charge_envelope(std::string_view text) {
    if (domain::is_valid_utf8(text)) return envelope_scanner(text).read();
    const std::string escaped = escape_non_ascii(text);
    return envelope_scanner(escaped).read();
}

std::string string_field(const json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_string()) return {};
    return it->get<std::string>();
}

// Integers, or floats with an integral value; nullopt for anything else that is present.
// Absent or null fields read as 0.
std::optional<std::int64_t> integer_field(const json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return 0;
    // Above INT64_MAX a cast would wrap to a negative amount: not an answer we understand.
    if (it->is_number_unsigned() &&
        it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        return std::nullopt;
    if (it->is_number_integer()) return it->get<std::int64_t>();
    if (it->is_number_float()) {
        const double value = it->get<double>();
        if (value >= -9.0e15 && value <= 9.0e15 &&
            value == static_cast<double>(static_cast<std::int64_t>(value)))
            return static_cast<std::int64_t>(value);
    }
    return std::nullopt;
}

std::optional<payment> payment_from(const json& j) {
    if (!j.is_object()) return std::nullopt;
    payment p;
    p.imp_uid = string_field(j, "imp_uid");
    p.merchant_uid = string_field(j, "merchant_uid");
    p.customer_uid = string_field(j, "customer_uid");
    p.status = string_field(j, "status");
    p.currency = string_field(j, "currency");
    p.fail_reason = string_field(j, "fail_reason");
    p.pg_provider = string_field(j, "pg_provider");
    p.pg_tid = string_field(j, "pg_tid");
    p.pay_method = string_field(j, "pay_method");
    p.receipt_url = string_field(j, "receipt_url");
    p.name = string_field(j, "name");
    struct numeric {
        const char* key;
        std::int64_t* target;
    };
    const numeric numbers[] = {
        {"amount", &p.amount},         {"cancel_amount", &p.cancel_amount},
        {"started_at", &p.started_at}, {"paid_at", &p.paid_at},
        {"failed_at", &p.failed_at},   {"cancelled_at", &p.cancelled_at},
    };
    for (const auto& n : numbers) {
        auto value = integer_field(j, n.key);
        if (!value) return std::nullopt;  // a non-integral amount is not an answer we understand
        *n.target = *value;
    }
    return p;
}

std::optional<envelope> envelope_from(const json& j) {
    if (!j.is_object()) return std::nullopt;
    auto code = j.find("code");
    if (code == j.end() || !code->is_number_integer()) return std::nullopt;
    envelope e;
    e.code = code->get<std::int64_t>();
    e.message = string_field(j, "message");
    auto response = j.find("response");
    e.response_null = response == j.end() || response->is_null();
    e.response_object = response != j.end() && response->is_object();
    return e;
}

bool contains(std::string_view text, std::string_view needle) {
    return text.find(needle) != std::string_view::npos;
}

// Fills the fields every classification shares; result and message are decided by the caller.
exchange base_exchange(std::string kind, std::string summary, const http_answer& answer) {
    exchange x;
    x.kind = std::move(kind);
    x.request_summary = std::move(summary);
    x.request_written = answer.request_written;
    x.http_status = answer.http_status;
    x.latency = answer.latency;
    x.raw = bounded_raw(answer.body);
    return x;
}

std::string transport_message(const http_answer& answer) {
    const std::string error = answer.transport_error.empty() ? "no answer" : answer.transport_error;
    if (!answer.request_written) return "not sent: " + error;
    return "no complete answer after the request was sent: " + error;
}

std::string http_message(int status, const std::optional<envelope>& env) {
    std::string text = "HTTP " + std::to_string(status);
    if (env && !env->message.empty()) text += ": " + env->message;
    return text;
}

// Outcome of a charge answer that is not a clean HTTP 200 envelope.
outcome charge_status_class(int status) {
    if (status == 429) return outcome::transient;     // rate limited: not processed
    if (status == 400) return outcome::refused;       // PortOne read it and said no: reconcile
    if (status == 401) return outcome::config_error;  // after the token layer's one retry
    // No charge endpoint there: base_url points elsewhere (a path, a proxy, a redirect).
    if (status == 404 || (status >= 300 && status < 400)) return outcome::config_error;
    return outcome::unknown;  // 5xx, 403, ...: reconcile
}

}  // namespace

std::string charge_body(const charge_request& request) {
    // Written field by field (in the order the JSON library sorts them): the request body is
    // built once per charge, and a JSON tree for nine fields cost more than the HTTP exchange.
    domain::json_object body;
    const auto optional = [&](std::string_view key, const std::string& value) {
        if (!value.empty()) body.add(key, value);
    };
    body.add("amount", request.amount);
    optional("buyer_email", request.buyer_email);
    optional("buyer_name", request.buyer_name);
    optional("buyer_tel", request.buyer_tel);
    optional("currency", request.currency);
    optional("custom_data", request.custom_data);
    body.add("customer_uid", request.customer_uid)
        .add("merchant_uid", request.merchant_uid)
        .add("name", request.name);
    return body.str();
}

std::string token_body(std::string_view imp_key, std::string_view imp_secret) {
    json body = json::object();
    body["imp_key"] = imp_key;
    body["imp_secret"] = imp_secret;
    return dump(body);
}

std::string charge_summary(const charge_request& request) {
    return "POST /subscribe/payments/again merchant_uid=" + request.merchant_uid +
           " customer_uid=" + request.customer_uid + " amount=" + std::to_string(request.amount) +
           " currency=" + request.currency;
}

std::string encode_path_segment(std::string_view segment) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(segment.size());
    for (unsigned char c : segment) {
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                                c == '~';
        if (unreserved) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0x0F];
        }
    }
    return out;
}

std::optional<envelope> parse_envelope(std::string_view body) {
    auto j = parse_json(body);
    if (!j) return std::nullopt;
    return envelope_from(*j);
}

bool is_b64token(std::string_view token) {
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    std::size_t i = 0;
    while (i < token.size()) {
        const auto c = static_cast<unsigned char>(token[i]);
        if (!(std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
              c == '/'))
            break;
        ++i;
    }
    if (i == 0) return false;
    while (i < token.size() && token[i] == '=') ++i;
    return i == token.size();
}

std::optional<token_answer> parse_token(std::string_view body) {
    auto j = parse_json(body);
    if (!j) return std::nullopt;
    auto env = envelope_from(*j);
    if (!env || env->code != 0 || !env->response_object) return std::nullopt;
    const json& response = (*j)["response"];
    token_answer t;
    t.access_token = string_field(response, "access_token");
    auto now = integer_field(response, "now");
    auto expired_at = integer_field(response, "expired_at");
    if (t.access_token.empty() || !now || !expired_at || *expired_at <= *now || *now <= 0)
        return std::nullopt;
    t.now = *now;
    t.expired_at = *expired_at;
    return t;
}

std::optional<payment> parse_payment(std::string_view json_object) {
    auto j = parse_json(json_object);
    if (!j) return std::nullopt;
    return payment_from(*j);
}

std::string bounded_raw(std::string_view body) {
    return std::string(domain::cut_utf8(body, max_journaled_body));
}

charge_result classify_charge(const charge_request& request, const http_answer& answer) {
    charge_result r;
    r.journal = base_exchange("charge", charge_summary(request), answer);
    exchange& x = r.journal;

    if (!answer.transport_error.empty() || answer.http_status == 0) {
        // Nothing written: provably not processed. Written without a complete answer: the PG
        // may be charging the card right now. A refused certificate will be refused again.
        x.result = answer.tls_verify_failed ? outcome::config_error
                   : answer.request_written ? outcome::unknown
                                            : outcome::transient;
        x.message = transport_message(answer);
        return r;
    }

    auto j = parse_charge_envelope(answer.body);
    std::optional<envelope> env;
    if (j) env = envelope_from(*j);
    if (env) {
        x.code = env->code;
        x.message = env->message;
    }

    if (answer.http_status != 200) {
        x.result = charge_status_class(answer.http_status);
        x.message = http_message(answer.http_status, env);
        return r;
    }
    if (!env) {
        x.result = outcome::unknown;
        x.message = j ? "HTTP 200 without a PortOne envelope" : "HTTP 200 with a non-JSON body";
        return r;
    }

    if (env->code != 0) {
        const bool no_payment = env->response_null;
        if ((env->code == 1 || env->code == -1) && no_payment &&
            contains(env->message, unregistered_customer_text)) {
            x.result = outcome::invalid_billing_key;
            r.needs_customer_check = true;
        } else if (no_payment && contains(env->message, module_not_configured_text)) {
            x.result = outcome::config_error;
        } else {
            // PG communication failure, merchant_uid already used, ...: PortOne got it, and
            // the money may have moved earlier under this merchant_uid. Reconcile.
            x.result = outcome::refused;
        }
        return r;
    }

    std::optional<payment> p;
    if (env->response_object) p = payment_from((*j)["response"]);
    if (!p) {
        x.result = outcome::unknown;
        x.message = "code 0 without a readable payment";
        // Say what was received (an amount out of range, a fraction), not a converted value.
        if (env->response_object)
            if (auto amount = (*j)["response"].find("amount");
                amount != (*j)["response"].end() && !amount->is_null())
                x.message += " (amount " + dump(*amount).substr(0, 64) + ")";
        return r;
    }
    x.imp_uid = p->imp_uid;
    if (p->status == "paid") {
        x.result = outcome::paid;
    } else if (p->status == "failed") {
        x.result = outcome::declined;
        if (!p->fail_reason.empty()) x.message = p->fail_reason;
    } else {
        x.result = outcome::unknown;  // ready, cancelled, or a status we do not know
        if (x.message.empty()) x.message = "payment status \"" + p->status + "\"";
    }
    r.answer = std::move(p);
    return r;
}

std::optional<std::string> paid_anomaly(const charge_request& request, const payment& paid) {
    if (paid.amount != request.amount)
        return "amount " + std::to_string(paid.amount) + " != asked " +
               std::to_string(request.amount);
    if (paid.customer_uid != request.customer_uid)
        return "customer_uid \"" + paid.customer_uid + "\" != asked \"" + request.customer_uid +
               "\"";
    if (paid.merchant_uid != request.merchant_uid)
        return "merchant_uid \"" + paid.merchant_uid + "\" != asked \"" + request.merchant_uid +
               "\"";
    // An empty currency is not proof either: every field as sent.
    if (paid.currency != request.currency)
        return "currency \"" + paid.currency + "\" != asked \"" + request.currency + "\"";
    return std::nullopt;
}

namespace {

// What lookups (findAll pages, customers) share: transport failures stay unknown, PortOne's
// own 404 envelope means "no record" (a bare 404 from a wrong base_url or a proxy must not
// let the scheduler resend), 401 is a configuration error. `settled` says whether that
// decided the exchange; otherwise the caller reads `body` and `env`.
struct lookup_answer {
    std::optional<json> body;
    std::optional<envelope> env;
    bool settled = false;
};

lookup_answer read_lookup_answer(const http_answer& answer, exchange& x) {
    lookup_answer a;
    x.result = outcome::unknown;
    if (!answer.transport_error.empty() || answer.http_status == 0) {
        x.message = transport_message(answer);
        if (answer.tls_verify_failed) x.result = outcome::config_error;
        a.settled = true;
        return a;
    }
    a.body = parse_json(answer.body);
    if (a.body) a.env = envelope_from(*a.body);
    if (a.env) {
        x.code = a.env->code;
        x.message = a.env->message;
    }
    if (answer.http_status == 404) {
        if (a.env) {
            x.result = outcome::not_found;
        } else {
            x.message = "HTTP 404 without a PortOne envelope";
        }
        a.settled = true;
    } else if (answer.http_status == 401) {
        x.result = outcome::config_error;
        x.message = http_message(401, a.env);
        a.settled = true;
    }
    return a;
}

}  // namespace

find_all_page classify_find_all_page(std::string summary, const http_answer& answer) {
    find_all_page r;
    r.journal = base_exchange("lookup", std::move(summary), answer);
    exchange& x = r.journal;
    auto [j, env, settled] = read_lookup_answer(answer, x);
    if (settled) return r;
    if (answer.http_status != 200 || !env || env->code != 0 || !env->response_object) {
        if (answer.http_status != 200) {
            x.message = http_message(answer.http_status, env);
        } else if (!env) {
            x.message = "HTTP 200 without a PortOne envelope";
        } else if (x.message.empty()) {
            x.message = "code " + std::to_string(env->code) + " without a payment list";
        }
        return r;
    }

    const json& response = (*j)["response"];
    auto list = response.find("list");
    auto total = integer_field(response, "total");
    auto previous = integer_field(response, "previous");
    auto next = integer_field(response, "next");
    if (list == response.end() || !list->is_array() || !total || !previous || !next) {
        x.message = "malformed payment list";
        return r;
    }
    payment_list page;
    page.total = *total;
    page.previous = *previous;
    page.next = *next;
    for (const auto& item : *list) {
        auto p = payment_from(item);
        if (!p) {
            x.message = "malformed payment in list";
            return r;
        }
        page.list.push_back(std::move(*p));
    }
    x.result = outcome::found;
    r.page = std::move(page);
    return r;
}

lookup_result reduce_lookup(exchange journal, std::vector<payment> payments) {
    lookup_result r;
    r.journal = std::move(journal);
    r.payments = std::move(payments);

    const payment* paid = nullptr;
    const payment* latest_failure = nullptr;
    bool pending = false;
    for (const auto& p : r.payments) {
        if (p.status == "paid") {
            if (!paid) paid = &p;
        } else if (p.status == "failed" || p.status == "cancelled") {
            auto when = [](const payment& q) {
                return std::pair{std::max(q.failed_at, q.cancelled_at), q.started_at};
            };
            if (!latest_failure || when(p) > when(*latest_failure)) latest_failure = &p;
        } else {
            pending = true;  // ready, or a status we do not know: the money may still move
        }
    }

    if (paid) {
        r.verdict = outcome::paid;
        r.settled = *paid;
    } else if (pending) {
        r.verdict = outcome::unknown;
    } else if (latest_failure) {
        r.verdict = outcome::declined;
        r.settled = *latest_failure;
    } else {
        r.verdict = outcome::not_found;
    }
    r.journal.result = r.verdict;
    if (r.settled) {
        r.journal.imp_uid = r.settled->imp_uid;
        if (r.verdict == outcome::declined && !r.settled->fail_reason.empty())
            r.journal.message = r.settled->fail_reason;
    }
    return r;
}

customer_result classify_customer(std::string summary, const http_answer& answer) {
    customer_result r;
    r.journal = base_exchange("customer", std::move(summary), answer);
    exchange& x = r.journal;
    auto [j, env, settled] = read_lookup_answer(answer, x);
    if (settled) return r;
    if (answer.http_status != 200 || !env) {
        if (answer.http_status != 200) {
            x.message = http_message(answer.http_status, env);
        } else {
            x.message = "HTTP 200 without a PortOne envelope";
        }
        return r;
    }
    if (env->code != 0) {
        x.result = outcome::not_found;  // older accounts answer an unknown key this way
        return r;
    }
    if (!env->response_object) {
        if (x.message.empty()) x.message = "code 0 without customer data";
        return r;
    }
    const json& response = (*j)["response"];
    r.exists = true;
    r.card_name = string_field(response, "card_name");
    r.card_number = string_field(response, "card_number");
    r.pg_provider = string_field(response, "pg_provider");
    x.result = outcome::found;
    return r;
}

token_result classify_token(const http_answer& answer) {
    token_result r;
    r.journal = base_exchange("token", "POST /users/getToken", answer);
    exchange& x = r.journal;
    x.result = outcome::transient;

    if (!answer.transport_error.empty() || answer.http_status == 0) {
        x.message = transport_message(answer);
        if (answer.tls_verify_failed) x.result = outcome::config_error;
        return r;
    }
    auto env = parse_envelope(answer.body);
    if (env) {
        x.code = env->code;
        x.message = env->message;
    }
    const int status = answer.http_status;
    if (status == 400 || status == 401 || status == 403) {
        x.result = outcome::config_error;
        x.message = http_message(status, env) + " (check imp_key/imp_secret)";
        return r;
    }
    if (status != 200) {
        x.message = http_message(status, env);
        return r;
    }
    // A 200 answer may hold an access token even when it is unusable: never journal it.
    x.raw.clear();
    r.token = parse_token(answer.body);
    if (!r.token) {
        if (x.message.empty()) x.message = "getToken answer without a usable token";
        return r;
    }
    if (!is_b64token(r.token->access_token)) {
        // It goes into an Authorization header: anything outside RFC 6750's b64token (a CR/LF
        // above all) could inject a header or smuggle a request. Never retried as transient.
        r.token.reset();
        x.result = outcome::config_error;
        x.message = "getToken returned an access token with characters outside RFC 6750";
        return r;
    }
    x.message.clear();
    x.result = outcome::found;
    return r;
}

}  // namespace billingd::gateway::wire
