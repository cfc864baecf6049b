// The JSON side of the wire layer (see wire_detail.hpp).
#include "gateway/wire_detail.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "domain/text.hpp"

namespace billingd::gateway::wire {
namespace {

using detail::json;

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

// Reads a charge answer's envelope, keeping only what it is classified by: the top-level
// code, message and response, and of the response object only the payment's fields (with the
// scalar fields of each cancel_history entry; other nested values are checked and kept as an
// empty value of their type, so nesting stays four levels deep whatever the text). The whole
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
    enum class place {
        document,
        envelope_member,
        response_object,
        payment_field,
        cancel_history,  // the payment's cancel_history array
        cancel_entry,    // one of its elements
    };

    static bool payment_field_wanted(std::string_view k) {
        static constexpr std::string_view fields[] = {
            "imp_uid",     "merchant_uid", "customer_uid",  "status",     "currency",
            "fail_reason", "pg_provider",  "pg_tid",        "pay_method", "receipt_url",
            "name",        "amount",       "cancel_amount", "started_at", "paid_at",
            "failed_at",   "cancelled_at", "cancel_history"};
        return std::find(std::begin(fields), std::end(fields), k) != std::end(fields);
    }
    static bool cancellation_field_wanted(std::string_view k) {
        static constexpr std::string_view fields[] = {"pg_tid", "amount",          "cancelled_at",
                                                      "reason", "cancellation_id", "receipt_url"};
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
    // it. Only the document, its members, the response's fields and the entries of its
    // cancel_history are read; containers below that are checked by skip_nested and kept as an
    // empty value of their type.
    bool value(json* target, place where) {
        if (at_end()) return false;
        const char c = peek();
        if (c == '{' || c == '[') {
            const bool read_members =
                target && c == '{' &&
                (where == place::document || where == place::response_object ||
                 where == place::cancel_entry);
            const bool read_elements = target && c == '[' && where == place::cancel_history;
            if (read_members) {
                *target = json::object();
                return members(*target, where);
            }
            if (read_elements) {
                *target = json::array();
                return elements(*target);
            }
            if (target) *target = c == '{' ? json::object() : json::array();
            return skip_nested();
        }
        return scalar(target);
    }

    // The elements of a cancel_history array, each read as a cancel_entry.
    bool elements(json& array) {
        ++i_;  // '['
        skip_ws();
        if (at_end()) return false;
        if (peek() == ']') {
            ++i_;
            return true;
        }
        for (;;) {
            json item;
            if (!value(&item, place::cancel_entry)) return false;
            array.push_back(std::move(item));
            skip_ws();
            if (at_end()) return false;
            if (peek() == ']') {
                ++i_;
                return true;
            }
            if (peek() != ',') return false;
            ++i_;
            skip_ws();
        }
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
            } else if (where == place::response_object && payment_field_wanted(key)) {
                target = &object[key];
                if (key == "cancel_history") child = place::cancel_history;
            } else if (where == place::cancel_entry && cancellation_field_wanted(key)) {
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

}  // namespace

namespace detail {

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<json> parse_json(std::string_view text) {
    json j = domain::is_valid_utf8(text) ? json::parse(text, nullptr, /*allow_exceptions=*/false)
                                         : json::parse(escape_non_ascii(text), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

// A charge, cancel or payment answer (an envelope around one payment object).
std::optional<json> parse_payment_envelope(std::string_view text) {
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
    // Absent or null: no cancels. Anything but an array of objects with integral numbers is
    // not an answer we understand either.
    auto history = j.find("cancel_history");
    if (history == j.end() || history->is_null()) return p;
    if (!history->is_array()) return std::nullopt;
    for (const auto& entry : *history) {
        if (!entry.is_object()) return std::nullopt;
        cancellation c;
        c.pg_tid = string_field(entry, "pg_tid");
        c.reason = string_field(entry, "reason");
        c.cancellation_id = string_field(entry, "cancellation_id");
        c.receipt_url = string_field(entry, "receipt_url");
        auto amount = integer_field(entry, "amount");
        auto cancelled_at = integer_field(entry, "cancelled_at");
        if (!amount || !cancelled_at) return std::nullopt;
        c.amount = *amount;
        c.cancelled_at = *cancelled_at;
        p.cancel_history.push_back(std::move(c));
    }
    return p;
}

std::optional<envelope> envelope_from(const json& j) {
    if (!j.is_object()) return std::nullopt;
    auto code = j.find("code");
    if (code == j.end() || !code->is_number_integer()) return std::nullopt;
    // Above INT64_MAX the cast would wrap (to a negative "refusal"): not an envelope at all.
    if (code->is_number_unsigned() &&
        code->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        return std::nullopt;
    envelope e;
    e.code = code->get<std::int64_t>();
    e.message = string_field(j, "message");
    auto response = j.find("response");
    e.response_null = response == j.end() || response->is_null();
    e.response_object = response != j.end() && response->is_object();
    return e;
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

}  // namespace detail
}  // namespace billingd::gateway::wire
